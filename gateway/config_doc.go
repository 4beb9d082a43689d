package gateway

// docs/config.md and docs/config.schema.json are generated from the doc
// comments of the configuration's types (Config and the types of its
// fields, in config*.go); TestConfigReferenceIsUpToDate fails when they
// are stale.
//go:generate go run ../internal/configdoc/cmd

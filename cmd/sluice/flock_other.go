//go:build !unix

package main

import "os"

// tryLock takes no lock: without flock nothing stops a second demo on a
// directory but the state file's lock; the platforms Sluice runs on are
// all unix.
func tryLock(*os.File) (bool, error) { return true, nil }

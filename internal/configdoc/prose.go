package configdoc

import (
	"go/doc/comment"
	"regexp"
	"strings"
	"unicode"
)

// What a doc comment says about its key, read from its words.

var wordRE = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)

// namesWord reports whether text holds word as a whole word.
func namesWord(text, word string) bool {
	for _, loc := range wordRE.FindAllStringIndex(text, -1) {
		if text[loc[0]:loc[1]] == word {
			return true
		}
	}
	return false
}

// oneLine is text with every run of white space a single space.
func oneLine(text string) string { return strings.Join(strings.Fields(text), " ") }

// requiredRE finds a sentence that begins with "Required": the
// punctuation after it ("Required.", "Required: why", "Required, and
// unique"), or the condition it states ("Required with X").
var requiredRE = regexp.MustCompile(`(?:^|[.!?] )Required(?:([.:;,])|( [^.;:,]+))`)

// required reads whether doc says its key is required, and under what
// condition ("" for always).
func required(doc string) (always bool, when string) {
	m := requiredRE.FindStringSubmatch(oneLine(doc))
	switch {
	case m == nil:
		return false, ""
	case m[1] != "":
		return true, ""
	}
	return false, strings.TrimSpace(m[2])
}

var (
	// defaultRE finds "(default VALUE)", "(default VALUE; ...)" and
	// "(default VALUE: ...)".
	defaultRE = regexp.MustCompile(`\(default ((?:[^;):]|:[^ ])+)`)
	// defaultAfterRE finds "VALUE (default)", "VALUE (default; ...)" and
	// "VALUE (the default: ...)".
	defaultAfterRE = regexp.MustCompile(`(\S+) \((?:the )?default[);:]`)
)

// defaultOf reads the default doc states, as written; "" when it states
// none.
func defaultOf(doc string) string {
	text := oneLine(doc)
	if m := defaultRE.FindStringSubmatch(text); m != nil {
		return strings.TrimSpace(m[1])
	}
	if m := defaultAfterRE.FindStringSubmatch(text); m != nil {
		return strings.TrimRight(m[1], ",")
	}
	return ""
}

// seeFileRE is a pointer to Go source, of no use to the file's readers.
var seeFileRE = regexp.MustCompile(`\s*\(see\s+[A-Za-z0-9_./-]+\.go\)`)

// keysFor rewrites a doc comment for a reader of the configuration rather
// than of the Go source: the Go names it begins with ("CertFile and
// KeyFile are ...") and the CamelCase ones anywhere in it become the keys
// in keys, each written by format, and pointers to Go files go.
func keysFor(doc string, keys map[string]string, format func(string) string) string {
	doc = seeFileRE.ReplaceAllString(doc, "")
	// The subject: Name, Name, ... and Name.
	var b strings.Builder
	rest := doc
	for {
		loc := wordRE.FindStringIndex(rest)
		if loc == nil || loc[0] != 0 {
			break
		}
		key, ok := keys[rest[:loc[1]]]
		if !ok {
			break
		}
		b.WriteString(format(key))
		rest = rest[loc[1]:]
		sep := ""
		for _, s := range []string{", ", " and "} {
			if strings.HasPrefix(rest, s) {
				sep = s
			}
		}
		if sep == "" {
			break
		}
		next := wordRE.FindString(rest[len(sep):])
		if _, ok := keys[next]; !ok || !strings.HasPrefix(rest[len(sep):], next) {
			break
		}
		b.WriteString(sep)
		rest = rest[len(sep):]
	}
	// CamelCase names elsewhere, unless qualified (time.Duration).
	rest = wordRE.ReplaceAllStringFunc(rest, func(w string) string {
		if key, ok := keys[w]; ok && camelCase(w) {
			return format(key)
		}
		return w
	})
	b.WriteString(rest)
	return b.String()
}

// camelCase reports whether w has a lower-case letter and at least two
// upper-case ones (KeyFile, TitleZH), so is not an ordinary word.
func camelCase(w string) bool {
	upper, lower := 0, 0
	for _, r := range w {
		switch {
		case unicode.IsUpper(r):
			upper++
		case unicode.IsLower(r):
			lower++
		}
	}
	return upper >= 2 && lower > 0
}

// typeDoc is a type's doc comment as the description of where it is
// used, key: "SourceConfig is one department's data service." becomes
// "One department's data service."; "HubConfig sets ..." becomes "key
// sets ...", or "It sets ..." without a key.
func typeDoc(doc, name, key string, format func(string) string) string {
	doc = seeFileRE.ReplaceAllString(doc, "")
	for _, verb := range []string{" is ", " are "} {
		if rest, ok := strings.CutPrefix(doc, name+verb); ok && rest != "" {
			return strings.ToUpper(rest[:1]) + rest[1:]
		}
	}
	if key == "" {
		format = func(string) string { return "It" }
	}
	return keysFor(doc, map[string]string{name: key}, format)
}

func code(s string) string  { return "`" + s + "`" }
func plain(s string) string { return s }

// markdown renders a doc comment, already rewritten by keysFor, as
// Markdown: its paragraphs, lists and code blocks, with the characters
// Markdown would take for markup escaped, but for the backquotes of code.
func markdown(doc string) string {
	var p comment.Parser
	var blocks []string
	for _, blk := range p.Parse(doc).Content {
		blocks = append(blocks, markdownBlock(blk))
	}
	return strings.Join(blocks, "\n\n")
}

func markdownBlock(blk comment.Block) string {
	switch blk := blk.(type) {
	case *comment.Paragraph:
		return markdownText(blk.Text)
	case *comment.Heading:
		return "**" + markdownText(blk.Text) + "**"
	case *comment.Code:
		return "```\n" + blk.Text + "```"
	case *comment.List:
		var items []string
		for i, it := range blk.Items {
			var parts []string
			for _, c := range it.Content {
				parts = append(parts, markdownBlock(c))
			}
			bullet := "- "
			if it.Number != "" {
				bullet = it.Number + ". "
			}
			if i > 0 && blk.BlankBetween() {
				bullet = "\n" + bullet
			}
			items = append(items, bullet+strings.Join(parts, "\n\n  "))
		}
		return strings.Join(items, "\n")
	}
	return ""
}

func markdownText(text []comment.Text) string {
	var b strings.Builder
	for _, t := range text {
		switch t := t.(type) {
		case comment.Plain:
			b.WriteString(escape(string(t)))
		case comment.Italic:
			b.WriteString("*" + escape(string(t)) + "*")
		case *comment.Link:
			if t.Auto {
				b.WriteString(t.URL)
			} else {
				b.WriteString("[" + markdownText(t.Text) + "](" + t.URL + ")")
			}
		case *comment.DocLink:
			b.WriteString(markdownText(t.Text))
		}
	}
	return strings.ReplaceAll(b.String(), "\n", " ")
}

// escape escapes what Markdown would take for emphasis, HTML or a link:
// *, <, [, and _ but inside a word (checkpoint_key_file is left as it is).
func escape(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == '*' || r == '<' || r == '[' || r == '\\':
			b.WriteRune('\\')
		case r == '_' && !(i > 0 && isWordRune(rs[i-1]) && i+1 < len(rs) && isWordRune(rs[i+1])):
			b.WriteRune('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// text renders a doc comment, already rewritten by keysFor, as plain
// text: paragraphs separated by a blank line, lines joined.
func text(doc string) string {
	var p comment.Parser
	pr := comment.Printer{TextWidth: -1}
	return strings.TrimSpace(string(pr.Text(p.Parse(doc))))
}

package app

import (
	"embed"
	"strings"
)

// helpFiles hold each command's long help, help/NAME.txt: text the
// documentation can quote as it is.
//
//go:embed help/*.txt
var helpFiles embed.FS

// helpText is the long help of command name (help/NAME.txt without its
// final newline). A command without its file is a build mistake: the
// binary stops at start, and a test names the file.
func helpText(name string) string {
	b, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic("mim: no help file for command " + name + ": " + err.Error())
	}
	return strings.TrimSuffix(string(b), "\n")
}

// Package web holds Aoba's reference browser client: a single-page
// application of plain HTML, ES modules and CSS, with no build step and
// nothing fetched from another origin, embedded in the server binary.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// FS returns the client's static files, rooted so that index.html is at the
// top of the tree. It cannot fail: the tree is embedded at build time, and a
// missing static directory is a compile error.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "static" is valid.
		panic(err)
	}
	return sub
}

// Package jsclient embeds the JavaScript client, aoba.js, so that the server
// serves it to its own browser client (web.FS mounts it at sdk/aoba.js,
// under the same origin and Content-Security-Policy as the SPA).
package jsclient

import (
	"embed"
	"io/fs"
)

//go:embed aoba.js
var files embed.FS

// FS returns a file system holding aoba.js at its top.
func FS() fs.FS {
	return files
}

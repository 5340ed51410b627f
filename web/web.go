// Package web holds Aoba's reference browser client: a single-page
// application of plain HTML, ES modules and CSS, with no build step and
// nothing fetched from another origin, embedded in the server binary.
package web

import (
	"embed"
	"io/fs"
	"strings"

	jsclient "github.com/aoba-chat/aoba/clients/js"
)

//go:embed static
var static embed.FS

// SDKDir is the directory of FS that holds the JavaScript client of
// clients/js (sdk/aoba.js), which the SPA imports.
const SDKDir = "sdk"

// FS returns the client's static files, rooted so that index.html is at the
// top of the tree, with the JavaScript client at sdk/aoba.js. It cannot
// fail: the trees are embedded at build time, and a missing static directory
// is a compile error.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "static" is valid.
		panic(err)
	}
	return overlay{base: sub, sdk: jsclient.FS()}
}

// overlay serves SDKDir from sdk and everything else from base. A directory
// listing of the top does not show SDKDir; nothing lists it.
type overlay struct {
	base, sdk fs.FS
}

func (o overlay) Open(name string) (fs.File, error) {
	if name == SDKDir {
		return o.sdk.Open(".")
	}
	if rest, ok := strings.CutPrefix(name, SDKDir+"/"); ok {
		return o.sdk.Open(rest)
	}
	return o.base.Open(name)
}

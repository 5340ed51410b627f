package web_test

import (
	"bytes"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/aoba-chat/aoba/web"
)

func TestFS(t *testing.T) {
	fsys := web.FS()
	t.Run("IndexAtTop", func(t *testing.T) {
		b, err := fs.ReadFile(fsys, "index.html")
		if err != nil {
			t.Fatalf("read index.html: %v", err)
		}
		if !strings.Contains(string(b), `type="module"`) {
			t.Fatalf("index.html does not load the client as an ES module")
		}
	})
	t.Run("NoInlineScriptOrHandlers", func(t *testing.T) {
		err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".html") {
				return err
			}
			b, err := fs.ReadFile(fsys, path)
			if err != nil {
				return err
			}
			s := strings.ToLower(string(b))
			for _, bad := range []string{"<script>", " onclick=", " onload=", " onsubmit=", " style=", "<style", "http://", "https://"} {
				if strings.Contains(s, bad) {
					t.Errorf("%s contains %q, which breaks a default-src 'self' policy or fetches from another origin", path, bad)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("NoDynamicCodeInScripts", func(t *testing.T) {
		// The walk does not enter sdk/ (the top's listing does not show
		// it): walk it as well.
		err := fs.WalkDir(fsys, web.SDKDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
				return err
			}
			return checkScript(t, fsys, path)
		})
		if err != nil {
			t.Fatal(err)
		}
		err = fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
				return err
			}
			b, err := fs.ReadFile(fsys, path)
			if err != nil {
				return err
			}
			for _, bad := range []string{"eval(", "new Function", "innerHTML", "setAttribute('style'", "http://", "https://"} {
				if strings.Contains(string(b), bad) {
					t.Errorf("%s contains %q, which breaks a default-src 'self' policy or fetches from another origin", path, bad)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ModulesPresent", func(t *testing.T) {
		for _, name := range []string{"app.js", "rest.js", "dom.js", "style.css", "favicon.svg", "sdk/aoba.js"} {
			if _, err := fs.Stat(fsys, name); err != nil {
				t.Errorf("missing %s: %v", name, err)
			}
		}
	})
}

// checkScript reports, as checks of the SPA's scripts do, dynamic code or an
// absolute URL in the script at path.
func checkScript(t *testing.T, fsys fs.FS, path string) error {
	t.Helper()
	b, err := fs.ReadFile(fsys, path)
	if err != nil {
		return err
	}
	for _, bad := range []string{"eval(", "new Function", "innerHTML", "http://", "https://"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("%s contains %q, which breaks a default-src 'self' policy or fetches from another origin", path, bad)
		}
	}
	return nil
}

func TestSDKIsServedAsIs(t *testing.T) {
	fsys := web.FS()
	got, err := fs.ReadFile(fsys, "sdk/aoba.js")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../clients/js/aoba.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("sdk/aoba.js differs from clients/js/aoba.js")
	}
	if _, err := fs.Stat(fsys, "sdk/../index.html"); err == nil {
		t.Fatal("sdk/../index.html opened: the overlay must refuse paths that are not valid")
	}
}

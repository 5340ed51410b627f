package api_test

import (
	"context"
	"testing"

	"github.com/aoba-chat/aoba/api"
	"github.com/getkin/kin-openapi/openapi3"
)

func TestOpenAPI(t *testing.T) {
	t.Run("LoadsAndValidates", func(t *testing.T) {
		doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if err := doc.Validate(context.Background()); err != nil {
			t.Fatalf("validate: %v", err)
		}
		if doc.OpenAPI[:2] != "3." {
			t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
		}
		for _, name := range []string{"bearerAuth", "cookieAuth", "queryToken"} {
			if doc.Components.SecuritySchemes[name] == nil {
				t.Errorf("security scheme %s missing", name)
			}
		}
	})
	t.Run("EveryOperationDocumentsErrors", func(t *testing.T) {
		doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
		if err != nil {
			t.Fatal(err)
		}
		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				if op.Responses.Value("500") == nil || op.Responses.Value("503") == nil {
					t.Errorf("%s %s: 500/503 not documented", method, path)
				}
				if op.Security == nil || len(*op.Security) > 0 {
					if op.Responses.Value("401") == nil {
						t.Errorf("%s %s: authenticated but 401 not documented", method, path)
					}
				}
			}
		}
	})
	t.Run("BodyAndCrossSiteRefusalsDocumented", func(t *testing.T) {
		doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
		if err != nil {
			t.Fatal(err)
		}
		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				switch method {
				case "POST", "PUT", "PATCH", "DELETE":
				default:
					continue
				}
				// Any write may carry a body (415) and the cookie (403).
				if op.Responses.Value("415") == nil || op.Responses.Value("403") == nil {
					t.Errorf("%s %s: 415/403 not documented", method, path)
				}
				if op.RequestBody != nil && op.Responses.Value("400") == nil {
					t.Errorf("%s %s: takes a body but 400 not documented", method, path)
				}
			}
		}
	})
}

// Package models holds the project's model files that are committed:
// catalog.yaml (the models zhiyin knows, read by `zhiyin models install`),
// the manifests of models fetched at build time (silero-vad/model.yaml) and
// the generated test models (testdata/, written by scripts/gen-test-models).
// The Go package only embeds the catalog; it does no I/O.
package models

import "embed"

//go:embed catalog.yaml
var files embed.FS

// Catalog returns the bytes of catalog.yaml (parse them with
// inference.ParseCatalog).
func Catalog() []byte {
	b, err := files.ReadFile("catalog.yaml")
	if err != nil {
		panic("models: catalog.yaml not embedded: " + err.Error())
	}
	return b
}

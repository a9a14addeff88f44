// Package builtin embeds the default domain zhiyin serves when no domain
// folder is configured: a Chinese e-commerce and express-delivery customer
// service (查物流, 退货, 退款进度, 改地址, 开发票, 取消订单, 投诉, 转人工, FAQ),
// and the NLU model trained on its examples.
//
// The domain files are in the domain folder (domain.yml, responses.yml,
// faq.yml, nlu.yml), the trained model in the model folder. After changing
// the examples in nlu.yml (or the intents and entities in domain.yml),
// retrain the model so the two stay in step (the package test fails until
// then):
//
//	go run ./cmd/zhiyin train --data dialogue/domain/builtin/domain --out dialogue/domain/builtin/model --seed 1
//
// The package only exposes files; it does not parse them (package
// dialogue/domain reads the domain, package dialogue/nlu the model).
package builtin

import (
	"embed"
	"io/fs"
)

// Source is the source name of the embedded domain, used in positions
// ("builtin/domain.yml:12") and as domain.Domain.Source.
const Source = "builtin"

//go:embed domain model
var files embed.FS

// Domain returns the embedded domain folder: the root holds domain.yml,
// responses.yml, faq.yml and nlu.yml. The result is read-only, does no I/O
// and is safe for concurrent use; pass it to domain.LoadFS with Source.
func Domain() fs.FS { return sub("domain") }

// Model returns the embedded NLU model folder trained on the domain's
// examples: the root holds nlu.json (the manifest) and the files it lists.
// The result is read-only, does no I/O and is safe for concurrent use.
func Model() fs.FS { return sub("model") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path; dir is a constant.
		panic("builtin: " + err.Error())
	}
	return f
}

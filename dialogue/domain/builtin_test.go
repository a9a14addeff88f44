package domain

import (
	"testing"

	"github.com/zhiyin/zhiyin/dialogue/domain/builtin"
)

// TestLoadBuiltin loads the embedded default domain (written in package
// builtin): it must load, answer every intent somehow and render every
// response.
func TestLoadBuiltin(t *testing.T) {
	d, err := LoadFS(builtin.Domain(), builtin.Source)
	if err != nil {
		t.Fatalf("the builtin domain does not load:\n%v", err)
	}
	if d.Name != "builtin" || d.Source != builtin.Source || len(d.Intents) == 0 || len(d.Responses) == 0 {
		t.Errorf("name %q source %q, %d intents, %d responses", d.Name, d.Source, len(d.Intents), len(d.Responses))
	}
	for _, r := range d.Responses {
		if text, _ := r.Render("webchat", map[string]string{}, nil); text == "" && len(r.Variants) > 0 {
			t.Errorf("%s renders empty", r.Name)
		}
	}
	t.Logf("%d intents, %d slots, %d responses, %d forms, %d faq entries, skills %v", len(d.Intents), len(d.Slots), len(d.Responses), len(d.Forms), len(d.FAQ), d.Skills())
}

package models_test

import (
	"reflect"
	"testing"

	"github.com/zhiyin/zhiyin/inference"
	"github.com/zhiyin/zhiyin/models"
)

func TestCatalogParses(t *testing.T) {
	c, err := inference.ParseCatalog(models.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Find("sense-voice-small")) != 2 || len(c.Find("paraformer-zh")) == 0 {
		t.Errorf("catalog lacks the ASR models: %+v", c.Models)
	}
}

// The committed Silero VAD manifest and its catalog entry agree.
func TestSileroManifestMatchesCatalog(t *testing.T) {
	c, err := inference.ParseCatalog(models.Catalog())
	if err != nil {
		t.Fatal(err)
	}
	m, err := inference.ReadManifest("silero-vad")
	if err != nil {
		t.Fatal(err)
	}
	e := c.Find(inference.VADModel)
	if len(e) != 1 {
		t.Fatalf("catalog has %d silero-vad entries", len(e))
	}
	if !reflect.DeepEqual(e[0].Contract, m.Contract) || e[0].Files[0].SHA256 != m.Files[0].SHA256 || e[0].Version != m.Version {
		t.Errorf("catalog entry and models/silero-vad/model.yaml differ:\n%+v\n%+v", e[0].Contract, m.Contract)
	}
}

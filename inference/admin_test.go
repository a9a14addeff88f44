package inference

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestHTTPStatus(t *testing.T) {
	cases := map[error]int{
		nil:                                   http.StatusOK,
		fmt.Errorf("x: %w", ErrModelNotFound): http.StatusNotFound,
		fmt.Errorf("x: %w", ErrNoCandidate):   http.StatusConflict,
		fmt.Errorf("x: %w", ErrNoPrevious):    http.StatusConflict,
		fmt.Errorf("x: %w", ErrContract):      http.StatusUnprocessableEntity,
		fmt.Errorf("x: %w", ErrChecksum):      http.StatusUnprocessableEntity,
		fmt.Errorf("x: %w", ErrClosed):        http.StatusServiceUnavailable,
		fmt.Errorf("x: %w", ErrOverloaded):    http.StatusServiceUnavailable,
		errors.New("something else"):          http.StatusInternalServerError,
	}
	for err, want := range cases {
		if got := HTTPStatus(err); got != want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", err, got, want)
		}
	}
}

func TestShadowOptionsJSON(t *testing.T) {
	in := ShadowOptions{Dir: "/x", Fraction: 0.25, Window: 90 * time.Minute}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"dir":"/x","fraction":0.25,"window":"1h30m0s"}` {
		t.Errorf("marshal: %s", b)
	}
	var out ShadowOptions
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("round trip: %+v %v", out, err)
	}
	for _, bad := range []string{`{"window":"soon"}`, `{"fraction":2}`, `{"window":"-1m"}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func FuzzShadowOptionsJSON(f *testing.F) {
	f.Add([]byte(`{"dir":"/x","fraction":0.25,"window":"1h"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var o ShadowOptions
		if err := json.Unmarshal(b, &o); err != nil {
			return
		}
		if o.Fraction < 0 || o.Fraction > 1 || o.Window < 0 {
			t.Fatalf("accepted invalid options %+v", o)
		}
	})
}

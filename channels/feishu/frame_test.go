package feishu

import (
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestFrameRoundTrip(t *testing.T) {
	f := &frame{
		SeqID: 1, LogID: 2, Service: 7, Method: methodData,
		Headers:         []header{{hdrType, typeEvent}, {hdrMessageID, "m1"}, {hdrSum, "1"}, {hdrSeq, "0"}},
		PayloadEncoding: "json", PayloadType: "event", Payload: []byte(`{"a":1}`), LogIDNew: "log-1",
	}
	g, err := decodeFrame(f.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, g) {
		t.Fatalf("round trip\n got %+v\nwant %+v", g, f)
	}
	// Negative service ids survive as int32.
	g, err = decodeFrame((&frame{Service: -3}).encode())
	if err != nil || g.Service != -3 {
		t.Fatalf("service %d, %v", g.Service, err)
	}
}

func TestFrameUnknownFields(t *testing.T) {
	b := (&frame{SeqID: 5, Method: methodControl, Headers: []header{{hdrType, typePing}}}).encode()
	b = protowire.AppendTag(b, 42, protowire.BytesType)
	b = protowire.AppendString(b, "future")
	b = protowire.AppendTag(b, 43, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 9)
	f, err := decodeFrame(b)
	if err != nil || f.SeqID != 5 || f.header(hdrType) != typePing {
		t.Fatalf("%+v, %v", f, err)
	}
}

func TestFrameMalformed(t *testing.T) {
	wrongType := protowire.AppendTag(nil, 1, protowire.BytesType)
	wrongType = protowire.AppendString(wrongType, "x")
	for name, b := range map[string][]byte{
		"truncated varint": {0x08, 0x80},
		"truncated bytes":  {0x42, 0x05, 'a'},
		"wrong wire type":  wrongType,
		"bad header":       {0x2a, 0x02, 0x0a, 0x05},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeFrame(b); !errors.Is(err, errMalformed) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add((&frame{SeqID: 1, Service: 7, Method: 1, Headers: []header{{"type", "event"}, {"sum", "2"}, {"seq", "1"}}, Payload: []byte("{}")}).encode())
	f.Add((&frame{Method: 0, Headers: []header{{"type", "pong"}}, Payload: []byte(`{"PingInterval":60}`)}).encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		g, err := decodeFrame(fr.encode())
		if err != nil {
			t.Fatal(err)
		}
		if len(fr.Payload) == 0 && len(g.Payload) == 0 {
			fr.Payload, g.Payload = nil, nil
		}
		if !reflect.DeepEqual(fr, g) {
			t.Fatalf("re-decode\n got %+v\nwant %+v", g, fr)
		}
	})
}

package feishu

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Long-connection frames are protobuf pbbp2.Frame messages, written here by
// hand:
//
//	message Header { required string key = 1; required string value = 2; }
//	message Frame {
//	  required uint64 SeqID = 1; required uint64 LogID = 2;
//	  required int32 service = 3; required int32 method = 4;
//	  repeated Header headers = 5;
//	  optional string payload_encoding = 6; optional string payload_type = 7;
//	  optional bytes payload = 8; optional string LogIDNew = 9;
//	}

// Frame methods.
const (
	methodControl = 0
	methodData    = 1
)

// Frame header keys and types.
const (
	hdrType      = "type"
	hdrMessageID = "message_id"
	hdrSum       = "sum"
	hdrSeq       = "seq"
	hdrTraceID   = "trace_id"
	hdrBizRT     = "biz_rt"

	typeEvent = "event"
	typeCard  = "card"
	typePing  = "ping"
	typePong  = "pong"
)

type header struct{ Key, Value string }

type frame struct {
	SeqID           uint64
	LogID           uint64
	Service         int32
	Method          int32
	Headers         []header
	PayloadEncoding string
	PayloadType     string
	Payload         []byte
	LogIDNew        string
}

// header returns the first value of key, or "".
func (f *frame) header(key string) string {
	for _, h := range f.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return ""
}

// setHeader replaces key's value or adds it.
func (f *frame) setHeader(key, value string) {
	for i, h := range f.Headers {
		if h.Key == key {
			f.Headers[i].Value = value
			return
		}
	}
	f.Headers = append(f.Headers, header{key, value})
}

// encode marshals f; the required fields are always written.
func (f *frame) encode() []byte {
	b := make([]byte, 0, 64+len(f.Payload))
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, f.SeqID)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, f.LogID)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(int64(f.Service)))
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(int64(f.Method)))
	for _, h := range f.Headers {
		var hb []byte
		hb = protowire.AppendTag(hb, 1, protowire.BytesType)
		hb = protowire.AppendString(hb, h.Key)
		hb = protowire.AppendTag(hb, 2, protowire.BytesType)
		hb = protowire.AppendString(hb, h.Value)
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, hb)
	}
	if f.PayloadEncoding != "" {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendString(b, f.PayloadEncoding)
	}
	if f.PayloadType != "" {
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendString(b, f.PayloadType)
	}
	if f.Payload != nil {
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, f.Payload)
	}
	if f.LogIDNew != "" {
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		b = protowire.AppendString(b, f.LogIDNew)
	}
	return b
}

// decodeFrame unmarshals a frame, skipping unknown fields. A known field
// with the wrong wire type is malformed. The payload is copied.
func decodeFrame(b []byte) (*frame, error) {
	f := &frame{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, frameErr(n)
		}
		b = b[n:]
		want := protowire.BytesType
		if num >= 1 && num <= 4 {
			want = protowire.VarintType
		}
		if num < 1 || num > 9 || typ != want {
			if num >= 1 && num <= 9 {
				return nil, fmt.Errorf("decode frame: %w: field %d has wire type %d", errMalformed, num, typ)
			}
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, frameErr(n)
			}
			b = b[n:]
			continue
		}
		if typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, frameErr(n)
			}
			b = b[n:]
			switch num {
			case 1:
				f.SeqID = v
			case 2:
				f.LogID = v
			case 3:
				f.Service = int32(v)
			case 4:
				f.Method = int32(v)
			}
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, frameErr(n)
		}
		b = b[n:]
		switch num {
		case 5:
			h, err := decodeHeader(v)
			if err != nil {
				return nil, err
			}
			f.Headers = append(f.Headers, h)
		case 6:
			f.PayloadEncoding = string(v)
		case 7:
			f.PayloadType = string(v)
		case 8:
			f.Payload = append([]byte{}, v...)
		case 9:
			f.LogIDNew = string(v)
		}
	}
	return f, nil
}

func decodeHeader(b []byte) (header, error) {
	var h header
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return h, frameErr(n)
		}
		b = b[n:]
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return h, frameErr(n)
			}
			b = b[n:]
			if num == 1 {
				h.Key = string(v)
			} else {
				h.Value = string(v)
			}
			continue
		}
		if num == 1 || num == 2 {
			return h, fmt.Errorf("decode frame header: %w: field %d has wire type %d", errMalformed, num, typ)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return h, frameErr(n)
		}
		b = b[n:]
	}
	return h, nil
}

func frameErr(n int) error {
	return fmt.Errorf("decode frame: %w: %v", errMalformed, protowire.ParseError(n))
}

package onnxpb

import (
	"errors"
	"reflect"
	"testing"
)

func sampleModel() *Model {
	return &Model{
		IRVersion:    8,
		Opsets:       []Opset{{Version: 17}, {Domain: "com.example", Version: 1}},
		ProducerName: "zhiyin-test",
		Graph: Graph{
			Name: "g",
			Nodes: []Node{{Name: "mm", OpType: "MatMul", Inputs: []string{"x", "w"}, Outputs: []string{"y"},
				Attrs: []Attr{{Name: "i", Type: AttrInt, I: -3}, {Name: "f", Type: AttrFloat, F: 0.5},
					{Name: "is", Type: AttrInts, Ints: []int64{1, -1}}, {Name: "t", Type: AttrTensor, T: &Tensor{Name: "c", Type: Int64, Dims: []int64{1}, Raw: make([]byte, 8)}}}}},
			Initializers: []Tensor{FloatTensor("w", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})},
			Inputs: []ValueInfo{
				{Name: "x", ElemType: Float, Shape: []Dim{{Value: -1, Param: "N"}, {Value: 2}}, HasShape: true},
				{Name: "w", ElemType: Float, Shape: []Dim{{Value: 2}, {Value: 3}}, HasShape: true}, // initializer: not an input
				{Name: "s", ElemType: Int64, Shape: []Dim{}, HasShape: true},
				{Name: "u", ElemType: Int32, Shape: []Dim{{Value: -1}}, HasShape: true},
			},
			Outputs: []ValueInfo{{Name: "y", ElemType: Float, Shape: []Dim{{Value: -1, Param: "N"}, {Value: 3}}, HasShape: true}},
		},
		Metadata: []KV{{"vocab_size", "4"}, {"comment", "test"}},
	}
}

func TestRoundTrip(t *testing.T) {
	b := sampleModel().Marshal()
	info, err := ReadInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	if info.IRVersion != 8 || info.ProducerName != "zhiyin-test" || info.GraphName != "g" {
		t.Errorf("header: %+v", info)
	}
	if info.Opsets[""] != 17 || info.Opsets["com.example"] != 1 {
		t.Errorf("opsets: %v", info.Opsets)
	}
	want := []ValueInfo{
		{Name: "x", Kind: KindTensor, ElemType: Float, Shape: []Dim{{-1, "N"}, {2, ""}}, HasShape: true},
		{Name: "s", Kind: KindTensor, ElemType: Int64, Shape: []Dim{}, HasShape: true},
		{Name: "u", Kind: KindTensor, ElemType: Int32, Shape: []Dim{{-1, ""}}, HasShape: true},
	}
	if !reflect.DeepEqual(info.Inputs, want) {
		t.Errorf("inputs:\n got %+v\nwant %+v", info.Inputs, want)
	}
	if len(info.Outputs) != 1 || info.Outputs[0].Shape[1].Value != 3 || info.Outputs[0].Shape[0].String() != "N" {
		t.Errorf("outputs: %+v", info.Outputs)
	}
	if info.Metadata["vocab_size"] != "4" || info.Metadata["comment"] != "test" {
		t.Errorf("metadata: %v", info.Metadata)
	}
	if !reflect.DeepEqual(b, sampleModel().Marshal()) {
		t.Error("Marshal is not deterministic")
	}
}

func TestReadInfoMalformed(t *testing.T) {
	good := sampleModel().Marshal()
	cases := map[string][]byte{
		"empty":          {},
		"text":           []byte("this is not a model\n"),
		"truncated":      good[:len(good)/2],
		"no graph":       {0x08, 0x08}, // ir_version 8 only
		"group wiretype": {0x0b},
		"huge length":    {0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"zero field":     {0x00, 0x01},
		"no ir version":  {0x3a, 0x00},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadInfo(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func FuzzReadInfo(f *testing.F) {
	f.Add(sampleModel().Marshal())
	f.Add([]byte{0x08, 0x08, 0x3a, 0x00})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ReadInfo(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		for _, vi := range append(info.Inputs, info.Outputs...) {
			for _, d := range vi.Shape {
				if d.Param != "" && d.Value != -1 {
					t.Fatalf("named dim with value: %+v", d)
				}
			}
		}
	})
}

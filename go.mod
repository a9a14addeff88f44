module github.com/zhiyin/zhiyin

go 1.26.8

require (
	github.com/yalue/onnxruntime_go v1.27.0
	gopkg.in/yaml.v3 v3.0.1
)

module github.com/ztunnel-go/ztunnel

go 1.26.0

require (
	go.uber.org/goleak v1.3.0
	go.yaml.in/yaml/v3 v3.0.4
	google.golang.org/protobuf v1.36.12-0.20260120151049-f2248ac996af
)

require github.com/kr/text v0.2.0 // indirect

require (
	github.com/golang/protobuf v1.5.4 // indirect
	github.com/planetscale/vtprotobuf v0.6.1-0.20240409071808-615f978279ca // indirect
	istio.io/istio v0.0.0-20260827124520-eed52ebb66ad
)

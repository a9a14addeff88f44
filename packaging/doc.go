// Package packaging holds no Go code: the folder is the zhiyin .deb/.rpm
// definition (nfpm.yaml, maintainer scripts, the shipped
// /etc/zhiyin/zhiyin.yaml, the copyright file) and the tests that pin what
// the built packages contain.
//
// The tests read dist/ (written by `make package`) and skip when the
// packages are not there. Golden listings live in testdata/*.golden;
// `go test ./packaging -update` rewrites them after an intended change.
// Nothing here may download anything or need a running systemd.
package packaging

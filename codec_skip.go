//go:build !goexperiment.jsonv2

package kiwicache

import "errors"

// skipMarshaler is what a marshal function returns to let the default
// encoding write a value: errors.ErrUnsupported for go-json-experiment's own
// implementation. With GOEXPERIMENT=jsonv2 that package becomes the standard
// library's encoding/json/v2, which asks for its SkipFunc (codec_skip_jsonv2.go).
var skipMarshaler = errors.ErrUnsupported

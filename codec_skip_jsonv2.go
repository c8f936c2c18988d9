//go:build goexperiment.jsonv2

package kiwicache

import jsonv2 "encoding/json/v2"

// skipMarshaler: see codec_skip.go.
var skipMarshaler = jsonv2.SkipFunc

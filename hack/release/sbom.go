/*
Copyright 2026 The problemhook Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// SBOM returns a CycloneDX 1.5 JSON document of the Go binary bin, built
// as release version: the main module, the standard library of the Go
// that built it, and every module linked in, from the build information
// the Go toolchain embeds in the binary (`go version -m`). It has no
// timestamp, and its serial number is derived from the rest of it, so the
// same binary gives the same bytes.
func SBOM(bin, version string) ([]byte, error) {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("reading the build information of %s: %w", bin, err)
	}
	main := module(info.Main, cdx.ComponentTypeApplication)
	main.Version = "v" + version
	main.PackageURL = purl(info.Main.Path, main.Version)
	main.BOMRef = main.PackageURL
	for _, s := range info.Settings {
		main.Properties = appendProperty(main.Properties, "cdx:gomod:build:"+s.Key, s.Value)
	}

	goVersion := strings.TrimPrefix(info.GoVersion, "go")
	std := cdx.Component{
		Type:       cdx.ComponentTypeLibrary,
		Name:       "std",
		Version:    "v" + goVersion,
		PackageURL: purl("std", "v"+goVersion),
	}
	std.BOMRef = std.PackageURL
	components := []cdx.Component{std}
	refs := []string{std.BOMRef}
	for _, dep := range info.Deps {
		c := module(*dep, cdx.ComponentTypeLibrary)
		components = append(components, c)
		refs = append(refs, c.BOMRef)
	}

	bom := cdx.NewBOM()
	bom.Metadata = &cdx.Metadata{Component: &main}
	bom.Components = &components
	// The build information lists what is linked in, not who requires
	// whom, so the main module depends on all of it directly.
	bom.Dependencies = &[]cdx.Dependency{{Ref: main.BOMRef, Dependencies: &refs}}

	encode := func() ([]byte, error) {
		var buf bytes.Buffer
		enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false)
		if err := enc.EncodeVersion(bom, cdx.SpecVersion1_5); err != nil {
			return nil, fmt.Errorf("encoding the SBOM: %w", err)
		}
		return buf.Bytes(), nil
	}
	content, err := encode()
	if err != nil {
		return nil, err
	}
	bom.SerialNumber = serial(content)
	return encode()
}

// module returns the component of a Go module, the module that replaces
// it when there is one.
func module(m debug.Module, typ cdx.ComponentType) cdx.Component {
	if m.Replace != nil {
		m = *m.Replace
	}
	c := cdx.Component{Type: typ, Name: m.Path, Version: m.Version, PackageURL: purl(m.Path, m.Version)}
	c.BOMRef = c.PackageURL
	// go.sum's h1: hash is the SHA-256 of the module's file list and
	// their SHA-256s (golang.org/x/mod/sumdb/dirhash).
	if h, ok := strings.CutPrefix(m.Sum, "h1:"); ok {
		if sum, err := base64.StdEncoding.DecodeString(h); err == nil {
			c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hex.EncodeToString(sum)}}
		}
	}
	return c
}

// purl returns the package URL of a Go module (purl-spec's golang type).
func purl(path, version string) string {
	p := "pkg:golang/" + path
	if version != "" && version != "(devel)" {
		p += "@" + version
	}
	return p
}

func appendProperty(ps *[]cdx.Property, name, value string) *[]cdx.Property {
	if ps == nil {
		ps = &[]cdx.Property{}
	}
	*ps = append(*ps, cdx.Property{Name: name, Value: value})
	return ps
}

// serial returns a urn:uuid serial number that content determines: a
// version 5 style UUID from its SHA-256.
func serial(content []byte) string {
	sum := sha256.Sum256(content)
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u)
	return fmt.Sprintf("urn:uuid:%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

package check

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vguard-dev/vguard/internal/estate"
	"github.com/vguard-dev/vguard/internal/scanreport"
)

func TestSecretInImage(t *testing.T) {
	files := newMemFiles()
	files.scans["s/hr.json"] = &scanreport.Report{Secrets: []scanreport.Secret{
		{Rule: "aws-access-key-id", Path: "/etc/env", Redacted: "AKIA****MPLE"},
		{Rule: "aws-access-key-id", Path: "/root/.aws/credentials", Redacted: "AKIA****ABCD"},
		{Rule: "private-key", Path: "/etc/ssl/key.pem", Redacted: "-----BEGIN****"},
	}}
	files.scans["s/clean.json"] = &scanreport.Report{}
	files.scans["s/vm.json"] = &scanreport.Report{Secrets: []scanreport.Secret{{Rule: "password", Path: "/srv/app.ini", Redacted: "hun***"}}}
	on := func(name string, v int) func(*estate.VM) {
		return func(vm *estate.VM) { vm.Image = &estate.ImageRef{Name: name, Version: v} }
	}
	e := igEstate(
		igVM("hr-2", on("hr", 1)),
		igVM("hr-1", on("hr", 1)),
		igVM("web-1", func(vm *estate.VM) { on("web", 1)(vm); vm.Scan = "s/vm.json" }),
		igVM("web-2", func(vm *estate.VM) { on("web", 1)(vm); vm.Scan = "s/clean.json" }),
	)
	e.Images = []*estate.Image{
		{Name: "hr", Version: 1, Scan: "s/hr.json", Pos: estate.Pos{File: "images.yaml", Line: 3}},
		{Name: "web", Version: 1, Scan: "s/clean.json"},
		{Name: "lonely", Version: 1, Scan: "s/hr.json"},
	}
	res := igRun(t, e, nil, files, "VG105")
	igWant(t, res, "image/hr@1 vm/hr-1,vm/hr-2 high", "image/lonely@1  high", "vm/web-1  high")
	var hr Finding
	for _, f := range res.Findings {
		if f.Subject == "image/hr@1" {
			hr = f
		}
	}
	want := map[string]any{
		"secrets": 3, "rules": []string{"aws-access-key-id", "private-key"},
		"paths": []string{"/etc/env", "/etc/ssl/key.pem", "/root/.aws/credentials"},
	}
	if !reflect.DeepEqual(hr.Evidence, want) || hr.Pos.Line != 3 {
		t.Errorf("evidence %v pos %v", hr.Evidence, hr.Pos)
	}
	if hr.Message != "Image hr@1 carries 3 secrets (aws-access-key-id and private-key), and so does every VM made from it (2 in the estate); remove the secrets and rotate them." {
		t.Errorf("message %q", hr.Message)
	}
	// No finding ever shows a secret, not even redacted.
	for _, f := range res.Findings {
		blob := f.Message + " " + strings.Join(f.Related, " ")
		for _, v := range f.Evidence {
			if s, ok := v.([]string); ok {
				blob += strings.Join(s, " ")
			}
		}
		if strings.Contains(blob, "****") || strings.Contains(blob, "hun") {
			t.Errorf("%s shows a redacted value: %s", f.Subject, blob)
		}
	}
	// The policy's severity applies; without side files nothing fires.
	p := estate.DefaultPolicy()
	p.Severity["VG105"] = estate.SevCritical
	if got := igRun(t, e, p, files, "VG105"); got.Findings[0].Severity != estate.SevCritical {
		t.Errorf("severity %v", got.Findings[0].Severity)
	}
	igWant(t, igRun(t, e, nil, nil, "VG105"))
}

func TestSecretInImageUnreadable(t *testing.T) {
	files := newMemFiles()
	e := igEstate(
		igVM("a", func(vm *estate.VM) { vm.Scan = "s/none.json" }),
		igVM("b", func(vm *estate.VM) { vm.Scan = "s/none.json" }),
	)
	e.Images = []*estate.Image{{Name: "base", Version: 2, Scan: "s/none.json"}}
	res := igRun(t, e, nil, files, "VG105")
	var msgs []string
	for _, err := range res.Errors {
		msgs = append(msgs, err.Error())
	}
	// One error per file, named after the first object that refers to it.
	want := []string{"VG105: image base@2: scan report: open s/none.json: no such file or directory"}
	if !slices.Equal(msgs, want) || len(res.Findings) != 0 {
		t.Errorf("errors %q findings %v", msgs, res.Findings)
	}
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/filter"
)

// The demo bootstraps load without errors, and upstream health in the
// Dubbo one is parsed, not warned about.
func TestDemoBootstrapsLoad(t *testing.T) {
	files, _ := filepath.Glob("../demo/*.yaml")
	if len(files) == 0 {
		t.Fatal("no demo bootstraps")
	}
	for _, f := range files {
		y, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := LoadBootstrap(y, filter.Env{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if strings.Contains(f, "dubbo") {
			c := b.Listeners[0].Proxy.Clusters[0]
			if c.HealthCheck == nil || !c.HealthCheck.Codec || c.OutlierDetection == nil || c.MaxRequests != 1024 {
				t.Errorf("%s: upstream health not parsed: %+v", f, c)
			}
			if len(b.Warnings) != 0 {
				t.Errorf("%s: warnings %q", f, b.Warnings)
			}
		}
	}
}

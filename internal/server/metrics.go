package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vguard-dev/vguard/internal/estate"
)

// metrics are the server's Prometheus metrics, on a registry of its own
// (no globals: two servers in one test process do not collide).
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	judging  prometheus.Histogram
	findings *prometheus.GaugeVec
	syncFail *prometheus.CounterVec
	handler  http.Handler

	mu       sync.Mutex
	lastSync map[string]time.Time // connector name → last successful sync
	estateAt time.Time
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), lastSync: map[string]time.Time{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vguard_http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "vguard_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route"})
	m.judging = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vguard_judge_duration_seconds", Help: "Time to judge one change, audit record excluded.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .02, .05, .1, .5},
	})
	m.findings = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "vguard_findings", Help: "Open findings of the current estate by severity.",
	}, []string{"severity"})
	m.syncFail = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vguard_sync_failures_total", Help: "Connector syncs that failed on this replica, by connector.",
	}, []string{"connector"})
	syncAge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vguard_estate_age_seconds", Help: "Seconds since the estate was last loaded (upload or sync).",
	}, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.estateAt.IsZero() {
			return 0
		}
		return time.Since(m.estateAt).Seconds()
	})
	m.reg.MustRegister(m.requests, m.latency, m.judging, m.findings, m.syncFail, syncAge, &syncAgeCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

var syncAgeDesc = prometheus.NewDesc("vguard_sync_age_seconds",
	"Seconds since each connector's last successful sync on this replica.", []string{"connector"}, nil)

// syncAgeCollector reports the age of each connector's last sync at scrape
// time.
type syncAgeCollector struct{ m *metrics }

func (c *syncAgeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- syncAgeDesc }

func (c *syncAgeCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	for name, at := range c.m.lastSync {
		ch <- prometheus.MustNewConstMetric(syncAgeDesc, prometheus.GaugeValue, time.Since(at).Seconds(), name)
	}
}

func (m *metrics) observeRequest(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) setFindings(st *state) {
	counts := map[estate.Severity]int{}
	for i := range st.findings {
		counts[st.findings[i].Severity]++
	}
	for _, sev := range []estate.Severity{estate.SevCritical, estate.SevHigh, estate.SevMedium, estate.SevLow, estate.SevInfo} {
		m.findings.WithLabelValues(sev.String()).Set(float64(counts[sev]))
	}
	m.mu.Lock()
	m.estateAt = st.loaded
	m.mu.Unlock()
}

func (m *metrics) synced(connector string, at time.Time) {
	m.mu.Lock()
	m.lastSync[connector] = at
	m.mu.Unlock()
}

func (m *metrics) syncFailed(connector string) {
	m.syncFail.WithLabelValues(connector).Inc()
}

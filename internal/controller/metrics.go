package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the controller's Prometheus metrics, named as MIC's
// (namespace aadpodidentity), on a registry of their own.
type metrics struct {
	reg *prometheus.Registry

	additions       prometheus.Counter
	deletions       prometheus.Counter
	additionTime    prometheus.Histogram
	deletionTime    prometheus.Histogram
	cycleTime       prometheus.Histogram
	cycles          prometheus.Counter
	leaderElections prometheus.Counter
	armTime         *prometheus.HistogramVec
	armErrors       *prometheus.CounterVec
	kubeErrors      prometheus.Counter
}

func newMetrics() *metrics {
	const ns = "aadpodidentity"
	m := &metrics{
		reg: prometheus.NewRegistry(),
		additions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns,
			Name: "assigned_identity_addition_count", Help: "AzureAssignedIdentities created."}),
		deletions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns,
			Name: "assigned_identity_deletion_count", Help: "AzureAssignedIdentities released (finalizer removed)."}),
		additionTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns,
			Name: "assigned_identity_addition_duration_seconds", Help: "Time from AzureAssignedIdentity creation to Assigned."}),
		deletionTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns,
			Name: "assigned_identity_deletion_duration_seconds", Help: "Time from AzureAssignedIdentity deletion request to release."}),
		cycleTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns,
			Name: "mic_cycle_duration_seconds", Help: "Duration of one target (VM or scale set) reconciliation."}),
		cycles: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns,
			Name: "mic_cycle_count", Help: "Target (VM or scale set) reconciliations."}),
		leaderElections: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns,
			Name: "mic_new_leader_election_count", Help: "Leader elections won by this instance."}),
		armTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns,
			Name: "cloud_provider_operations_duration_seconds", Help: "ARM operation duration."}, []string{"operation"}),
		armErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns,
			Name: "cloud_provider_operations_errors_count", Help: "ARM operation errors."}, []string{"operation"}),
		kubeErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns,
			Name: "kubernetes_api_operations_errors_count", Help: "Kubernetes API write errors."}),
	}
	m.reg.MustRegister(m.additions, m.deletions, m.additionTime, m.deletionTime, m.cycleTime, m.cycles,
		m.leaderElections, m.armTime, m.armErrors, m.kubeErrors)
	return m
}

// armOp records one ARM operation ("vmss_get", "vm_update", ...).
func (m *metrics) armOp(op string, start time.Time, err error) {
	m.armTime.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		m.armErrors.WithLabelValues(op).Inc()
	}
}

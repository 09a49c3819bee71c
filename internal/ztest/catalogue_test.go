package ztest_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// kase is one case of the reliability and security catalogue (shared reference
// adversarial-tests.md §5): the tests that show it, or why it does not apply to us.
type kase struct {
	id, name string
	tests    []string // "package dir.TestName", or "package dir.TestName/subtest"
	argued   string   // why (part of) the case does not apply or is shown otherwise
}

// catalogue maps every case to where it is tested. TestCatalogue checks that each
// named test exists, so the map cannot drift from the code.
var catalogue = []kase{
	// Bad input (BI).
	{"BI-1", "non-CONNECT and h2 violations on 15008", []string{"internal/proxy.TestBadConnectRequests", "internal/metrics.TestHBONEErrorsCounted",
		"internal/hbone.TestProtocolViolationsEndTheConnection", "internal/hbone.TestStreamLevelErrorResetsOnlyThatStream",
		"internal/hbone.TestConformanceStreamStates", "internal/hbone.TestConformanceFrames", "internal/hbone.TestConformanceMessages"},
		"A bad preface is refused by NewServerConn: internal/proxy.TestGarbageOn15008 sends one."},
	{"BI-2", "malformed :authority", []string{"internal/proxy.TestBadConnectRequests", "internal/hbone.TestParseAuthority",
		"internal/hbone.FuzzParseAuthority"}, "PROXY protocol is not emitted, so there are no TLV lengths to bound."},
	{"BI-3", "open proxy / SSRF through inbound HBONE", []string{"internal/proxy.TestBadConnectRequests",
		"internal/proxy.TestInboundRefusals"}, "The upstream is always the local workload's IP: route.Router.Inbound never dials the authority's IP."},
	{"BI-4", "loops and sensitive ports", []string{"internal/app.TestInPod/a_pod_calling_ztunnel's_ports_directly_is_refused",
		"internal/proxy.TestInboundRefusals", "internal/proxy.TestBadConnectRequests"},
		"Admin (15000) binds 127.0.0.1 of the node netns only (internal/config.TestDefaultsInCluster); a pod's 127.0.0.1 is its own."},
	{"BI-5", "oversized headers / HPACK amplification", []string{"internal/hbone.TestOversizedHeaders",
		"internal/hbone.TestHPACKAmplificationAnswered431", "internal/hbone.TestSettingsStormKeepsServing"}, ""},
	{"BI-6", "CONTINUATION flood", []string{"internal/hbone.TestContinuationFloodEndsConnection",
		"internal/hbone.TestToolchainHasHTTP2Fixes"}, ""},
	{"BI-7", "garbage and downgraded TLS on 15008", []string{"internal/proxy.TestGarbageOn15008",
		"internal/proxy.TestSilentClientsDroppedAfterHandshakeTimeout", "internal/mtls.TestMutualTLS",
		"internal/proxy.TestHandshakeFloodLogIsBounded"}, "Each failure is counted; its log line is throttled."},
	{"BI-8", "wrong or odd identity in SANs", []string{"internal/identity.TestParse", "internal/identity.TestNewCertRefuses",
		"internal/mtls.TestMutualTLS", "internal/proxy.TestWrongServerIdentityRefused", "internal/proxy.TestInboundRefusals"}, ""},
	{"BI-9", "expired and not-yet-valid certificates", []string{"internal/mtls.TestBadClientCertificates",
		"internal/mtls.TestExpiredServerCertificateRefused", "internal/identity.TestNewCertRefuses",
		"internal/certmgr.TestExpiredCertificateIsNeverServed"}, ""},
	{"BI-10", "unknown CA, wrong key usage, resumption", []string{"internal/mtls.TestBadClientCertificates",
		"internal/mtls.TestMutualTLS", "internal/mtls.TestRefused", "internal/proxy.TestInboundRefusals"},
		"Session tickets are disabled on the server and the client keeps no session cache (internal/mtls), so there is no resumption to bypass a trust change; CRL is not built."},

	// Authorization (AZ).
	{"AZ-1", "default allow, then default deny", []string{"internal/proxy.TestAllowPolicyTurnsDefaultToDeny",
		"internal/rbac.TestEvaluate", "internal/proxy.TestSeedScenario"}, ""},
	{"AZ-2", "precedence and dry-run", []string{"internal/rbac.TestEvaluate", "internal/rbac.TestDryRunReported"}, ""},
	{"AZ-3", "scopes", []string{"internal/rbac.TestScopes", "internal/rbac.TestScopeChangeTakesEffect", "internal/state.TestPoliciesByScope"}, ""},
	{"AZ-4", "literal matchers, no injection", []string{"internal/rbac.TestEvaluate"}, ""},
	{"AZ-5", "ports, IPs and negations", []string{"internal/rbac.TestEvaluate"}, ""},
	{"AZ-6", "plaintext without identity", []string{"internal/rbac.TestEvaluate", "internal/proxy.TestStrictRefusesPlaintext"}, ""},
	{"AZ-7", "policy change mid-connection", []string{"internal/proxy.TestOpenConnectionClosedWhenDenyArrives",
		"internal/rbac.TestMissingPolicyFailsClosed", "internal/rbac.TestMissingPolicyArrivesInTime"}, ""},
	{"AZ-8", "no early data before authorization", []string{"internal/proxy.TestNoBytesBeforeAuthorization",
		"internal/proxy.TestInboundRefusals"}, ""},
	{"AZ-9", "identity binding and tunnel isolation", []string{"internal/proxy.TestPoolLimitsAndIdentitySeparation",
		"internal/caclient.TestWrongIdentityIsTyped", "internal/caclient.TestNoImpersonationInDedicatedMode",
		"internal/proxy.TestBaggageDescribesAnUnknownSource"},
		"rbac.Conn has no header fields: HBONE headers cannot reach authorization by construction."},

	// Faults (FT).
	{"FT-1", "xDS down at start", []string{"internal/app.TestStateManagerPendingWhileIstiodUnreachable",
		"internal/xds.TestInitialSyncFillsStateAndReadiness", "internal/app.TestXDSSyncMakesReady"}, ""},
	{"FT-2", "xDS down mid-run", []string{"internal/xds.TestReconnectResyncsWithInitialVersions"}, ""},
	{"FT-3", "xDS stream anomalies and bad resources", []string{"internal/xds.TestBadResourceNACKedRestApplied",
		"internal/xds.TestSilentServerIsLeft", "internal/xds.FuzzResourceConversion", "internal/state.TestBadResourcesRefusedOthersApplied"}, ""},
	{"FT-4", "CA down at start", []string{"internal/certmgr.TestFirstFetchFailureFailsFast",
		"internal/certmgr.TestConcurrentFetchesAreBounded", "internal/certmgr.TestBackoff"}, ""},
	{"FT-5", "CA down mid-run, through expiry", []string{"internal/certmgr.TestOutageKeepsValidCertificateAndRecovers",
		"internal/certmgr.TestExpiredCertificateIsNeverServed"}, ""},
	{"FT-6", "certificate and root rotation mid-connection", []string{"internal/certmgr.TestRenewsAtHalfLife"},
		"An open TLS connection keeps the certificates it was made with (as Rust ztunnel's do); new connections use the renewed one. Our CA's root is fixed for its life (internal/ca.TestRootStableForProcessLifetime), and a root rotation arrives as a new trust bundle with the next certificate: old-root peers fail on new handshakes, and no resumption exists to bypass it."},
	{"FT-7", "destination refuses or blackholes", []string{"internal/proxy.TestInboundRefusals", "internal/proxy.TestAbortIsNeverAFIN",
		"internal/app.TestInPod/a_blackholed_app_port_fails_at_the_connect_timeout,_not_never"},
		"The connect timeout is Rust's fixed 10 s (CONNECTION_TIMEOUT), not a variable."},
	{"FT-8", "peer ztunnel dies mid-stream", []string{"internal/hbone.TestPeerDeathFailsEveryStream",
		"internal/hbone.TestSilentPeerEndedByPing", "internal/pool.TestDeadOrLeavingConnectionsAreNotReused"}, ""},
	{"FT-9", "drain: own SIGTERM and peer GOAWAY", []string{"internal/app.TestNotReadyWhileDraining",
		"internal/app.TestDrainDeadlineEndsShutdown", "internal/hbone.TestGoAwayStopsNewStreams",
		"internal/pool.TestDeadOrLeavingConnectionsAreNotReused",
		"cmd/ztunnel.TestStandaloneStartsServesAndExitsZeroOnSIGTERM", "internal/config.TestGraceToDeadline"}, ""},
	{"FT-10", "resource exhaustion: fds and memory", []string{"internal/proxy.TestAcceptBacksOffWhenOutOfDescriptors",
		"internal/proxy.TestConnectionCapRefusesAtOnce"},
		"The Go runtime raises RLIMIT_NOFILE's soft limit to the hard limit at start (since Go 1.19)."},
	{"FT-11", "workload leaves the node", []string{"internal/app.TestInPod/a_deleted_pod's_connections_are_torn_down",
		"internal/certmgr.TestForgetStopsRenewals", "internal/inpod.TestSameUIDNewNamespaceReplaces",
		"internal/state.TestNewestWinsAddressConflict"}, ""},

	// Load (LD).
	{"LD-1", "10,000 concurrent connections", []string{"internal/app.TestTenThousandTunnels"}, ""},
	{"LD-2", "connection churn", []string{"internal/app.TestConnectionChurn", "internal/pool.TestIdleConnectionsReleased"}, ""},
	{"LD-3", "Rapid Reset and the stream cap", []string{"internal/hbone.TestRapidResetIsBoundedAndClosed",
		"internal/hbone.TestExcessStreamsRefused"}, "The victim's latency is a timing: bench/, not a pass/fail test."},
	{"LD-4", "MadeYouReset and control-frame floods", []string{"internal/hbone.TestServerResetsAreBudgeted",
		"internal/hbone.TestPingFloodWithoutReadingEndsConnection", "internal/hbone.TestProtocolViolationsEndTheConnection"}, ""},
	{"LD-5", "slowloris family", []string{"internal/proxy.TestSilentClientsDroppedAfterHandshakeTimeout",
		"internal/hbone.TestSilentPeerEndedByPing", "internal/proxy.TestIdleTunnelClosed", "internal/proxy.TestHalfClosedTunnelClosed"}, ""},
	{"LD-6", "flow-control fairness", []string{"internal/hbone.TestStalledStreamDoesNotBlockOthers"}, ""},

	// Data integrity (DI).
	{"DI-1", "bytes in == bytes out", []string{"internal/proxy.TestTunnelCarriesBytesEachWay", "internal/proxy.TestEveryByteOnEveryTunnel",
		"internal/hbone.TestLargeTransferBothWays", "internal/proxy.TestTrafficMetricsBothReporters", "internal/app.TestTenThousandTunnels"},
		"Loss and reordering (netem) cannot be induced here: this kernel has no sch_netem. Under loss TCP below us repairs the stream; we check every byte without it."},
	{"DI-2", "half-close client to server", []string{"internal/proxy.TestHalfCloseEachWay", "internal/hbone.TestHalfCloseEachWay"}, ""},
	{"DI-3", "half-close server to client", []string{"internal/proxy.TestUploadOutlivesServerFIN", "internal/proxy.TestHalfCloseEachWay"}, ""},
	{"DI-4", "abort propagation, never a silent truncation", []string{"internal/proxy.TestAbortIsNeverAFIN",
		"internal/proxy.TestStreamErrorLeavesOtherTunnels", "internal/hbone.TestPeerDeathFailsEveryStream"}, ""},
}

// TestCatalogue: 40 cases, 10/9/11/6/4 per group as the reference has them, each with
// at least one test that exists in the tree.
func TestCatalogue(t *testing.T) {
	root := filepath.Join("..", "..")
	want := map[string]int{"BI": 10, "AZ": 9, "FT": 11, "LD": 6, "DI": 4}
	got := map[string]int{}
	seen := map[string]bool{}
	for _, k := range catalogue {
		if seen[k.id] {
			t.Errorf("%s listed twice", k.id)
		}
		seen[k.id] = true
		got[strings.Split(k.id, "-")[0]]++
		if len(k.tests) == 0 {
			t.Errorf("%s has no test", k.id)
		}
		for _, ref := range k.tests {
			if !testExists(t, root, ref) {
				t.Errorf("%s names %s, which does not exist", k.id, ref)
			}
		}
	}
	for g, n := range want {
		if got[g] != n {
			t.Errorf("group %s: %d cases, want %d", g, got[g], n)
		}
	}
}

// testExists finds "func TestName(" (or FuzzName) in a _test.go file of the package;
// a subtest name must appear in the file as the t.Run name, spaces as underscores.
func testExists(t *testing.T, root, ref string) bool {
	dir, name, ok := strings.Cut(ref, ".")
	if !ok {
		return false
	}
	fn, sub, _ := strings.Cut(name, "/")
	files, _ := filepath.Glob(filepath.Join(root, dir, "*_test.go"))
	decl := regexp.MustCompile(`func ` + regexp.QuoteMeta(fn) + `\(`)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if decl.Match(src) && (sub == "" || strings.Contains(string(src), strings.ReplaceAll(sub, "_", " "))) {
			return true
		}
	}
	return false
}

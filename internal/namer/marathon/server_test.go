package marathon

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMarathon is a real HTTP server on loopback answering Marathon's
// documented v2 endpoints (GET /v2/apps, GET /v2/apps/<id>?embed=app.tasks)
// with Marathon's documented JSON, from the apps of testdata/apps.json,
// which tests change while the namer polls. It can also be DC/OS's IAM
// login endpoint. It is not Marathon: it checks the namer against the
// documented wire format only.
type fakeMarathon struct {
	t      *testing.T
	srv    *httptest.Server
	prefix string // URI prefix the API is served under ("" or "/marathon")

	mu       sync.Mutex
	apps     []map[string]any // in Marathon's order
	down     bool             // close every connection without an answer
	status   int              // when not 0, answer every API request with it
	basic    string           // required "Basic <basic>" when set
	dcosKey  *rsa.PublicKey   // when set: require a token from the login endpoint
	dcosUID  string
	token    string // the valid DC/OS token
	logins   int
	requests []request
}

type request struct {
	method, uri, auth, host string
}

const loginPath = "/acs/api/v1/auth/login"

// startMarathon serves testdata/apps.json under prefix; tlsConf, when not
// nil, makes it HTTPS with tlsConf's certificate.
func startMarathon(t *testing.T, prefix string, tlsConf *tls.Config) *fakeMarathon {
	t.Helper()
	b, err := os.ReadFile("testdata/apps.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Apps []map[string]any }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	m := &fakeMarathon{t: t, prefix: prefix, apps: doc.Apps}
	m.srv = httptest.NewUnstartedServer(http.HandlerFunc(m.serve))
	if tlsConf != nil {
		m.srv.TLS = tlsConf
		m.srv.StartTLS()
	} else {
		m.srv.Start()
	}
	t.Cleanup(m.srv.Close)
	return m
}

// hostPort returns the server's "127.0.0.1:<port>".
func (m *fakeMarathon) hostPort() string {
	return strings.TrimPrefix(strings.TrimPrefix(m.srv.URL, "http://"), "https://")
}

func (m *fakeMarathon) port() string {
	return m.hostPort()[strings.LastIndexByte(m.hostPort(), ':')+1:]
}

func (m *fakeMarathon) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests = append(m.requests, request{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Host})
	if m.down {
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("no hijacker")
		}
		c, _, err := hj.Hijack()
		if err == nil {
			c.Close()
		}
		return
	}
	if r.URL.Path == loginPath && r.Method == http.MethodPost {
		m.login(w, r)
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, m.prefix+"/v2/apps")
	if !ok || r.Method != http.MethodGet {
		http.Error(w, `{"message":"not found"}`, http.StatusNotFound)
		return
	}
	switch {
	case m.basic != "" && r.Header.Get("Authorization") != "Basic "+m.basic:
		w.Header().Set("WWW-Authenticate", `Basic realm="Mesosphere"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Invalid username or password."})
		return
	case m.dcosKey != nil && (m.token == "" || r.Header.Get("Authorization") != "token="+m.token):
		w.Header().Set("WWW-Authenticate", "acsjwt")
		writeJSON(w, http.StatusUnauthorized, map[string]any{"title": "Unauthorized", "description": "Invalid authentication token", "code": "ERR_INVALID_AUTH_TOKEN"})
		return
	case m.status != 0:
		writeJSON(w, m.status, map[string]any{"message": http.StatusText(m.status)})
		return
	}
	if path == "" || path == "/" {
		list := make([]map[string]any, 0, len(m.apps))
		for _, a := range m.apps {
			c := map[string]any{}
			for k, v := range a {
				if k != "tasks" { // /v2/apps embeds no tasks unless asked
					c[k] = v
				}
			}
			list = append(list, c)
		}
		writeJSON(w, http.StatusOK, map[string]any{"apps": list})
		return
	}
	if r.URL.Query().Get("embed") != "app.tasks" {
		m.t.Errorf("app request %s without embed=app.tasks", r.URL.RequestURI())
	}
	for _, a := range m.apps {
		if a["id"] == path {
			writeJSON(w, http.StatusOK, map[string]any{"app": a})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, map[string]any{"message": fmt.Sprintf("App '%s' does not exist", path)})
}

// login is DC/OS IAM's service login: it checks the RS256 JWT's signature
// with the account's public key and its uid, and issues a new token.
func (m *fakeMarathon) login(w http.ResponseWriter, r *http.Request) {
	var body struct{ UID, Token string }
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil || r.Header.Get("Content-Type") != "application/json" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"title": "Bad Request"})
		return
	}
	if err := verifyJWT(m.dcosKey, body.Token, body.UID); err != nil || body.UID != m.dcosUID {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"title": "Unauthorized", "description": fmt.Sprintf("login failed: %v", err)})
		return
	}
	m.logins++
	m.token = fmt.Sprintf("dcos-token-%d", m.logins)
	writeJSON(w, http.StatusOK, map[string]any{"token": m.token})
}

// verifyJWT checks an RS256 JWT against key and its claims against uid.
func verifyJWT(key *rsa.PublicKey, jwt, uid string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || key == nil {
		return fmt.Errorf("malformed JWT")
	}
	var header struct{ Alg string }
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &header) != nil || header.Alg != "RS256" {
		return fmt.Errorf("JWT header %q is not RS256", hb)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("JWT signature: %v", err)
	}
	var claims struct {
		UID string
		Exp int64
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(cb, &claims) != nil {
		return fmt.Errorf("JWT claims %q", cb)
	}
	if claims.UID != uid || time.Unix(claims.Exp, 0).Before(time.Now()) {
		return fmt.Errorf("JWT claims %s: wrong uid or expired", cb)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; qs=2")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// update changes the app with id under the server's lock (f gets its
// task list and returns the new one).
func (m *fakeMarathon) updateTasks(id string, f func([]any) []any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.apps {
		if a["id"] == id {
			tasks, _ := a["tasks"].([]any)
			a["tasks"] = f(slices.Clone(tasks))
			return
		}
	}
	m.t.Fatalf("no app %s", id)
}

// addTask adds a running, healthy task on host:port to app id.
func (m *fakeMarathon) addTask(id, taskID, host string, port int) {
	m.updateTasks(id, func(ts []any) []any {
		return append(ts, map[string]any{
			"id": taskID, "appId": id, "host": host, "ports": []any{port}, "state": "TASK_RUNNING",
			"ipAddresses": []any{}, "servicePorts": []any{10000}, "stagedAt": "2017-04-12T18:00:00.000Z",
			"startedAt": "2017-04-12T18:00:02.000Z", "version": "2017-04-12T17:23:01.357Z",
			"slaveId":            "8bb49d3c-56b0-4b4d-8a6c-f0e7d9b7b1b0-S3",
			"healthCheckResults": []any{map[string]any{"alive": true, "consecutiveFailures": 0, "instanceId": taskID}},
		})
	})
}

func (m *fakeMarathon) removeTask(id, taskID string) {
	m.updateTasks(id, func(ts []any) []any {
		return slices.DeleteFunc(ts, func(t any) bool { return t.(map[string]any)["id"] == taskID })
	})
}

// setAlive sets every health check result of a task.
func (m *fakeMarathon) setAlive(id, taskID string, alive bool) {
	m.updateTasks(id, func(ts []any) []any {
		for _, t := range ts {
			if t := t.(map[string]any); t["id"] == taskID {
				for _, r := range t["healthCheckResults"].([]any) {
					r.(map[string]any)["alive"] = alive
				}
			}
		}
		return ts
	})
}

func (m *fakeMarathon) removeApp(id string) map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, a := range m.apps {
		if a["id"] == id {
			m.apps = slices.Delete(m.apps, i, i+1)
			return a
		}
	}
	m.t.Fatalf("no app %s", id)
	return nil
}

func (m *fakeMarathon) addApp(a map[string]any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.apps = append(m.apps, a)
}

func (m *fakeMarathon) setDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

func (m *fakeMarathon) setStatus(code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status = code
}

// expireToken makes the current DC/OS token invalid, as its expiry does.
func (m *fakeMarathon) expireToken() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.token = "expired"
}

func (m *fakeMarathon) requestLog() []request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.requests)
}

func (m *fakeMarathon) loginCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logins
}

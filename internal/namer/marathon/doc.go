// Package marathon is the io.l5d.marathon namer: service discovery from
// Marathon (Mesos, DC/OS) through its v2 REST API.
//
// /#/io.l5d.marathon/<group…>/<app>/rest binds the app whose id is the
// shortest prefix of the (lower-cased) path, with the rest as residual,
// to the bound id /#/io.l5d.marathon/<group…>/<app>, as Linkerd 1.x does.
//
//   - While any lookup is watched, GET <uriPrefix>/v2/apps is polled every
//     ttlMs and every watched path is matched again against the app ids;
//     each matched app is polled with GET <uriPrefix>/v2/apps/<id>?embed=app.tasks
//     while it is watched. Nothing is asked for names nobody watches.
//   - A task's endpoint is its host and first port (or, with an IP per
//     task, its first IP and the app's first discovery port). Tasks that
//     are not TASK_RUNNING are left out; with useHealthCheck, so are tasks
//     of apps with health checks that lack a passing result for each
//     check. Task hosts that are names are resolved.
//   - No prefix being an app, or an app with no such task, is negative, so
//     dtab fall-backs apply.
//   - A Marathon failure keeps the last answer (a registry that blinks
//     never empties a serving set); it is logged, counted (failures) and
//     shown on /namer_state/io.l5d.marathon.json while it lasts. A name
//     that never had an answer fails with it.
//   - Credentials: a DC/OS service account (DCOS_SERVICE_ACCOUNT_CREDENTIAL)
//     logs in with an RS256 JWT and sends "Authorization: token=…",
//     logging in again when Marathon answers 401; else
//     MARATHON_HTTP_AUTH_CREDENTIAL is sent as basic auth.
//
// No test runs a real Marathon (it needs Mesos, and has no Debian
// package): the tests check the namer against Marathon's documented wire
// format, served by a real HTTP server on loopback (server_test.go,
// testdata/apps.json). See docs/compatibility.md §16.
package marathon

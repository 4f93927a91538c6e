package admin

import (
	"encoding/json"
	"net/http"
)

// JSONState serves the JSON encoding of snapshot(), computed on every GET
// (the state pages /bound-names.json, /client_state.json,
// /namer_state/<prefix>.json ...). Other methods get 405.
func JSONState(snapshot func() any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		b, err := json.Marshal(snapshot())
		if err != nil {
			http.Error(w, "encoding state: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	})
}

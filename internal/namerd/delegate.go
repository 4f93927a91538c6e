package namerd

import "net/http"

func (c *Controller) delegate(w http.ResponseWriter, r *http.Request, ns string) {
	w.WriteHeader(http.StatusNotImplemented)
}

func (c *Controller) delegateNoNamespace(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusNotImplemented)
}

// namerd admin page: the dtab playground. No dependencies.
(function () {
  "use strict";
  var form = document.getElementById("delegate-form");
  if (!form) return;
  var nsSelect = document.getElementById("namespace");
  var dtabInput = document.getElementById("dtab");
  var pathInput = document.getElementById("path");
  var result = document.getElementById("result");

  function storedDtab(ns) {
    var arts = document.querySelectorAll("article.namespace");
    for (var i = 0; i < arts.length; i++) {
      if (arts[i].dataset.namespace === ns) return arts[i].querySelector(".dtab-text").value;
    }
    return "";
  }
  function loadNamespace() { dtabInput.value = storedDtab(nsSelect.value); }
  nsSelect.addEventListener("change", loadNamespace);

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function addrText(addr) {
    if (!addr) return "";
    if (addr.type !== "bound") return addr.type + (addr.cause ? ": " + addr.cause : "");
    if (!addr.addrs.length) return "no endpoints";
    return addr.addrs.map(function (a) { return a.ip + ":" + a.port; }).join(", ");
  }

  // render turns one delegate-tree node into a list item.
  function render(node, weight) {
    var li = el("li", "node t-" + node.type);
    li.appendChild(el("span", "node-type", (weight !== undefined ? weight + " × " : "") + node.type));
    li.appendChild(el("span", "node-path", " " + (node.type === "leaf" ? node.bound.id : node.path || "")));
    if (node.bound && node.bound.path && node.bound.path !== "/") li.appendChild(el("span", "residual", " residual " + node.bound.path));
    if (node.dentry) li.appendChild(el("span", "dentry", node.dentry.prefix + " => " + node.dentry.dst));
    if (node.bound) li.appendChild(el("span", "addrs", addrText(node.bound.addr)));
    if (node.message) li.appendChild(el("span", "error", " " + node.message));
    var kids = [];
    if (node.delegate) kids.push([node.delegate]);
    if (node.tree) kids.push([node.tree]);
    (node.alt || []).forEach(function (c) { kids.push([c]); });
    (node.union || []).forEach(function (b) { kids.push([b.tree, b.weight]); });
    if (kids.length) {
      var ul = el("ul");
      kids.forEach(function (k) { ul.appendChild(render(k[0], k[1])); });
      li.appendChild(ul);
    }
    return li;
  }

  function resolve(ev) {
    if (ev) ev.preventDefault();
    var q = new URLSearchParams({ path: pathInput.value.trim(), dtab: dtabInput.value });
    result.textContent = "resolving…";
    result.dataset.state = "pending";
    fetch("/dtab/delegator.json?" + q.toString())
      .then(function (resp) {
        return resp.text().then(function (body) {
          if (!resp.ok) throw new Error(resp.status + " " + body);
          return JSON.parse(body);
        });
      })
      .then(function (tree) {
        result.textContent = "";
        var ul = el("ul", "tree");
        ul.appendChild(render(tree));
        result.appendChild(ul);
        result.dataset.state = "done";
      })
      .catch(function (err) {
        result.textContent = "";
        result.appendChild(el("p", "error", String(err.message || err)));
        result.dataset.state = "error";
      });
  }
  form.addEventListener("submit", resolve);

  // ?namespace=…&path=… preselects (and runs) a resolution, for links.
  var params = new URLSearchParams(location.search);
  if (params.get("namespace")) nsSelect.value = params.get("namespace");
  loadNamespace();
  if (params.get("path")) { pathInput.value = params.get("path"); resolve(); }
})();

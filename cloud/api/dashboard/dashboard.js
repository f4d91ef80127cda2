// Refreshes the dashboard's content every data-refresh seconds from its
// fragment URL (same query, same credentials); paused while the tab is hidden.
(function () {
  "use strict";
  var main = document.getElementById("dash");
  var status = document.getElementById("refresh-status");
  if (!main || !window.fetch) { return; }
  var every = Math.max(2, Number(main.getAttribute("data-refresh")) || 10) * 1000;
  var url = main.getAttribute("data-fragment");
  var busy = false;
  function tick() {
    if (busy || document.hidden) { return; }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        main.innerHTML = html;
        status.textContent = "updated " + new Date().toLocaleTimeString();
        status.className = "";
      })
      .catch(function (e) {
        status.textContent = "refresh failed: " + e.message;
        status.className = "err";
      })
      .then(function () { busy = false; });
  }
  setInterval(tick, every);
})();

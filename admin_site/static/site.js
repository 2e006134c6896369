// The little JavaScript the admin site has: live dashboard figures, bulk progress, the guild
// switcher. Every page works without it.
(function () {
  "use strict";

  // On a phone the menu folds behind the "Menu" button (without JavaScript it stays open).
  document.documentElement.classList.add("js");
  var toggle = document.querySelector(".menu-toggle");
  var nav = document.getElementById("site-nav");
  if (toggle && nav) {
    toggle.addEventListener("click", function () {
      var open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  var stats = document.querySelector("[data-live-stats]");
  if (stats) {
    var note = document.querySelector("[data-live-note]");
    var refresh = function () {
      fetch(stats.getAttribute("data-live-stats"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (data) {
          Object.keys(data).forEach(function (key) {
            var el = stats.querySelector('[data-stat="' + key + '"]');
            // Figures past 2^53 arrive as strings (exact); group their digits without Number().
            var value = data[key];
            if (el) {
              el.textContent = typeof value === "string"
                ? value.replace(/\B(?=(\d{3})+(?!\d))/g, ",")
                : Number(value).toLocaleString("en-US");
            }
          });
          // The time comes from the server, in the site's one format and the admin's zone.
          if (note) { note.textContent = "Updated " + (data.as_of || ""); }
        })
        .catch(function () { if (note) { note.textContent = "Could not refresh; showing the last figures."; } });
    };
    setInterval(refresh, 10000);
    refresh();
  }

  // Bulk batches: keep asking the server to go on until the batch is finished.
  var bulk = document.querySelector("[data-bulk-progress]");
  if (bulk && bulk.getAttribute("data-finished") !== "true") {
    var form = document.getElementById("bulk-continue");
    var token = form ? form.querySelector('[name="csrf_token"]').value : "";
    var step = function () {
      var body = new URLSearchParams({ csrf_token: token, format: "json" });
      fetch(bulk.getAttribute("data-bulk-progress"), { method: "POST", credentials: "same-origin", body: body })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          bulk.querySelector("progress").value = s.done + s.failed;
          bulk.querySelector('[data-bulk="done"]').textContent = s.done;
          bulk.querySelector('[data-bulk="failed"]').textContent = s.failed;
          if (s.finished) { window.location.reload(); } else { step(); }
        })
        .catch(function () { /* the Continue button still works */ });
    };
    if (form) { form.hidden = true; }
    step();
  }

  var switcher = document.querySelector("[data-switch-guild]");
  if (switcher) {
    switcher.addEventListener("change", function () {
      window.location.href = "/admin/g/" + encodeURIComponent(switcher.value) + "/";
    });
  }
})();

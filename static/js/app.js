// Progressive enhancement only: every feature below also works (more plainly) without JS.
(function () {
  "use strict";

  function setUpBusyIndicator(form) {
    form.addEventListener("submit", function () {
      var busy = form.querySelector("[data-busy]");
      var button = form.querySelector("[data-busy-button]");
      if (busy) { busy.hidden = false; }
      if (button) { button.disabled = true; button.setAttribute("aria-disabled", "true"); }
      form.setAttribute("aria-busy", "true");
    });
  }

  function setUpDropZone(zone) {
    var input = zone.querySelector("input[type=file]");
    var status = zone.querySelector("[data-drop-status]");
    function show(files) {
      if (status) { status.textContent = files && files.length ? "Selected: " + files[0].name : ""; }
    }
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        show(input.files);
      }
    });
    input.addEventListener("change", function () { show(input.files); });
  }

  function setUpCompare(compare) {
    var controls = document.querySelector("[data-compare-controls]");
    var overlay = compare.querySelector("[data-overlay]");
    if (!controls || !overlay) { return; }
    var slider = controls.querySelector("[data-opacity]");
    var toggle = controls.querySelector("[data-toggle-view]");
    controls.hidden = false;
    compare.classList.add("stacked");
    function apply() {
      overlay.style.opacity = String(slider.value / 100);
      slider.setAttribute("aria-valuetext", slider.value + "% heatmap");
    }
    slider.addEventListener("input", apply);
    toggle.addEventListener("click", function () {
      var stacked = compare.classList.toggle("stacked");
      toggle.setAttribute("aria-pressed", String(!stacked));
      toggle.textContent = stacked ? "Show side by side" : "Show stacked";
      slider.disabled = !stacked;
      overlay.style.opacity = stacked ? String(slider.value / 100) : "1";
    });
    apply();
  }

  // The server refuses a comparison of fewer than 2 or more than max analyses; this only says so
  // before the request, and keeps count as boxes are ticked.
  function setUpComparisonForm(form) {
    var status = form.querySelector("[data-comparison-status]");
    var max = Number(form.getAttribute("data-max-compared"));
    function count() { return form.querySelectorAll("[data-comparison-choice]:checked").length; }
    form.addEventListener("change", function () {
      var selected = count();
      status.textContent = selected + " selected" + (selected > max ? " (at most " + max + ")" : "") + ".";
    });
    form.addEventListener("submit", function (event) {
      var selected = count();
      if (selected < 2 || selected > max) {
        event.preventDefault();
        status.textContent = "Select between 2 and " + max + " analyses to compare (" + selected + " selected).";
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-comparison-form]").forEach(setUpComparisonForm);
    document.querySelectorAll("[data-busy-form]").forEach(setUpBusyIndicator);
    document.querySelectorAll("[data-drop-zone]").forEach(setUpDropZone);
    document.querySelectorAll("[data-compare]").forEach(setUpCompare);
  });
})();

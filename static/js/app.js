// Progressive enhancement only: every feature below also works (more plainly) without JS.
(function () {
  "use strict";

  function fileSize(bytes) {
    return bytes < 1048576 ? Math.max(1, Math.round(bytes / 1024)) + " kB" : (bytes / 1048576).toFixed(1) + " MB";
  }

  // The chosen image, shown before it is sent: the clinician sees what will be analysed.
  function setUpImageChoice(zone) {
    var input = zone.querySelector("input[type=file]");
    var status = zone.querySelector("[data-drop-status]");
    var preview = zone.querySelector("[data-preview]");
    var shownUrl = null;
    function show(files) {
      var file = files && files.length ? files[0] : null;
      if (shownUrl) { URL.revokeObjectURL(shownUrl); shownUrl = null; }
      if (status) { status.textContent = file ? "Selected: " + file.name + " (" + fileSize(file.size) + ")" : ""; }
      if (!preview) { return; }
      preview.hidden = true;
      if (!file || !window.URL || !URL.createObjectURL) { return; }
      shownUrl = URL.createObjectURL(file);
      preview.onload = function () { preview.hidden = false; };
      preview.onerror = function () {
        preview.hidden = true;
        if (status) { status.textContent = "Selected: " + file.name + " (this browser cannot show it; it will be checked on upload)"; }
      };
      preview.alt = "Preview of the chosen image, " + file.name;
      preview.src = shownUrl;
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
    show(input.files);
  }

  // The analysis form is sent by XMLHttpRequest, for real upload progress. A refused form comes
  // back as the server's page: its fields and messages replace these, but the chosen image (which
  // a browser never puts back into a file field) stays, and focus moves to the first error.
  function setUpUpload(form) {
    var busy = form.querySelector("[data-busy]");
    var busyText = form.querySelector("[data-busy-text]");
    var progress = form.querySelector("[data-upload-progress]");
    var button = form.querySelector("[data-busy-button]");
    function setBusy(on) {
      busy.hidden = !on;
      button.disabled = on;
      button.setAttribute("aria-disabled", String(on));
      form.setAttribute("aria-busy", String(on));
    }
    function stopBusy() { setBusy(false); progress.hidden = true; }
    function say(text) { busyText.textContent = text; }
    form.addEventListener("submit", function (event) {
      setBusy(true);
      if (!window.FormData || !window.XMLHttpRequest) { say("Analysing the image, this takes a moment…"); return; }
      event.preventDefault();
      var request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      request.upload.addEventListener("progress", function (step) {
        if (!step.lengthComputable) { return; }
        var percent = Math.floor(100 * step.loaded / step.total);
        progress.hidden = false;
        progress.value = percent;
        progress.setAttribute("aria-valuetext", percent + "%");
        say("Uploading the image: " + percent + "% (" + fileSize(step.loaded) + " of " + fileSize(step.total) + ")…");
      });
      request.upload.addEventListener("load", function () {
        progress.removeAttribute("value");  // indeterminate while the server analyses
        say("Uploaded. Analysing the image, this takes a moment…");
      });
      request.addEventListener("load", function () {
        var location = request.status === 201 && request.getResponseHeader("Location");
        if (location) { window.location.assign(location); return; }
        showRefusal(form, request.responseText, request.status, stopBusy);
      });
      request.addEventListener("error", function () {
        stopBusy();
        showFormError(form, "The upload did not reach DermaLens: check the connection and try again. Your image and entries are kept.");
      });
      say("Uploading the image…");
      progress.hidden = false;
      progress.value = 0;
      request.send(new FormData(form));
    });
  }

  function showFormError(form, message) {
    var alert = document.getElementById("form-error");
    if (!alert) {
      alert = document.createElement("div");
      alert.id = "form-error";
      alert.className = "flash flash-error";
      alert.setAttribute("role", "alert");
      alert.tabIndex = -1;
      form.parentNode.insertBefore(alert, form);
    }
    alert.textContent = message;
    alert.focus();
  }

  // `stopBusy` ends this form's busy state when the answer is not a form to put in its place.
  function showRefusal(form, html, status, stopBusy) {
    var page = new DOMParser().parseFromString(html, "text/html");
    var answer = page.querySelector("form[data-upload-form]");
    if (!answer) {
      var main = page.querySelector("main");
      var heading = main && main.querySelector("h1");
      var detail = main && main.querySelector("p");
      stopBusy();
      showFormError(form, (heading ? heading.textContent.trim() + ": " : "Error " + status + ": ") +
                    (detail ? detail.textContent.trim() : "") + " Your image and entries are kept.");
      return;
    }
    // The server's form, with this page's file field (and its chosen file and preview) moved in.
    var main = document.querySelector("main");
    var zone = form.querySelector("[data-drop-zone]");
    main.innerHTML = page.querySelector("main").innerHTML;
    var newForm = main.querySelector("form[data-upload-form]");
    newForm.querySelector("[data-drop-zone]").replaceWith(zone);
    var refusedImage = newForm.querySelector("[data-image-error]");
    zone.classList.toggle("has-error", Boolean(refusedImage));
    setUpUpload(newForm);
    var first = main.querySelector("[autofocus]") || main.querySelector("#form-error");
    if (first) { first.focus(); }
  }

  function setUpCompare(compare) {
    var controls = document.querySelector("[data-compare-controls]");
    var overlay = compare.querySelector("[data-overlay]");
    var caption = document.querySelector("[data-stacked-caption]");
    if (!controls || !overlay) { return; }
    var slider = controls.querySelector("[data-opacity]");
    var toggle = controls.querySelector("[data-toggle-view]");
    var name = caption.getAttribute("data-heatmap-name");
    var top = caption.getAttribute("data-heatmap-class");
    controls.hidden = false;
    compare.classList.add("stacked");
    function apply() {
      var stacked = compare.classList.contains("stacked");
      var value = Number(slider.value);
      overlay.style.opacity = stacked ? String(value / 100) : "1";
      caption.hidden = !stacked;
      caption.textContent = value === 0 ? "Image as analysed (" + name + " hidden)"
        : value === 100 ? name + " for " + top + " (the image shows through its colours)"
        : "Image as analysed with the " + name + " for " + top + " at " + value + "%";
      slider.setAttribute("aria-valuetext", value + "% " + name);
    }
    slider.addEventListener("input", apply);
    toggle.addEventListener("click", function () {
      var stacked = compare.classList.toggle("stacked");
      toggle.setAttribute("aria-pressed", String(!stacked));
      toggle.textContent = stacked ? "Show side by side" : "Show stacked";
      slider.disabled = !stacked;
      apply();
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

  // A new API token, copied with one press (the field stays selectable for copying by hand).
  function setUpCopy(button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("aria-describedby"));
    button.hidden = false;
    button.addEventListener("click", function () {
      function copied() { status.textContent = "Copied to the clipboard."; }
      field.select();
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(copied, function () {
          status.textContent = "Copying was refused: the token is selected, copy it with Ctrl+C.";
        });
      } else {
        document.execCommand("copy");
        copied();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-comparison-form]").forEach(setUpComparisonForm);
    document.querySelectorAll("[data-drop-zone]").forEach(setUpImageChoice);
    document.querySelectorAll("form[data-upload-form]").forEach(setUpUpload);
    document.querySelectorAll("[data-compare]").forEach(setUpCompare);
    document.querySelectorAll("[data-copy]").forEach(setUpCopy);
  });
})();

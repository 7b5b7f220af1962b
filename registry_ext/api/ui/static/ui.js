// Copy buttons for the pull commands; nothing else needs script.
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest(".copy-btn") : null;
  if (!button) return;
  var field = document.getElementById(button.getAttribute("data-target"));
  if (!field) return;
  field.select();
  var done = function () { button.textContent = "Copied"; };
  if (navigator.clipboard) {
    navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});

// "Show password" for every password field (ASVS 2.1.12): a real button after the field that
// switches it between hidden and visible text. No inline script (CSP); works without it too.
(function () {
  "use strict";
  function addToggle(input, index) {
    if (!input.id) {
      input.id = "password-field-" + index;
    }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "password-toggle";
    button.setAttribute("aria-controls", input.id);
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Show password";
    button.addEventListener("click", function () {
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      button.setAttribute("aria-pressed", show ? "true" : "false");
      button.textContent = show ? "Hide password" : "Show password";
      input.focus();
    });
    input.insertAdjacentElement("afterend", button);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var inputs = document.querySelectorAll('input[type="password"]');
    for (var i = 0; i < inputs.length; i += 1) {
      addToggle(inputs[i], i);
    }
  });
})();

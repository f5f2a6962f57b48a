// Strength meter for new passwords (ASVS 2.1.8). zxcvbn 4.4.2 (static/vendor/zxcvbn) scores what is
// typed, with the person's email and name as guessable words, exactly as the server's
// accounts.validators.StrengthValidator does, so the verdict shown here is the one the form gets.
// The result is text in an aria-live region (not only the colour of the bar). No inline script (CSP);
// without JavaScript the meter stays hidden and the server still explains a refusal.
(function () {
  "use strict";
  var LABELS = ["Very weak", "Weak", "Fair", "Strong", "Very strong"];
  // The same split as accounts.passwords.strength_user_inputs.
  var SEPARATORS = /[\s._+@'-]+/;

  function userInputs(values) {
    var inputs = [];
    function add(part) {
      if (part && inputs.indexOf(part) === -1) {
        inputs.push(part);
      }
    }
    values.forEach(function (raw) {
      var value = (raw || "").trim().toLowerCase();
      if (!value) {
        return;
      }
      var parts = [value];
      if (value.indexOf("@") !== -1) {
        parts.push(value.split("@")[0]);
      }
      parts = parts.concat(value.split(SEPARATORS));
      parts.forEach(add);
    });
    return inputs;
  }

  function valuesFor(input) {
    var fixed = input.getAttribute("data-strength-user-inputs");
    if (fixed) {
      try {
        return JSON.parse(fixed);
      } catch (e) {
        return [];
      }
    }
    var ids = (input.getAttribute("data-strength-fields") || "").split(" ");
    return ids.map(function (id) {
      var other = id ? document.getElementById(id) : null;
      return other ? other.value : "";
    });
  }

  function describe(result, minScore) {
    var text = "Strength: " + LABELS[result.score] + " (" + result.score + " of 4).";
    if (minScore !== null) {
      text += result.score >= minScore
        ? " Strong enough."
        : " Not strong enough yet: at least " + minScore + " of 4 is needed.";
    }
    var feedback = result.feedback || {};
    var advice = [feedback.warning].concat(feedback.suggestions || []).filter(Boolean);
    if (advice.length && (minScore === null || result.score < minScore)) {
      text += " " + advice.join(" ");
    }
    return text;
  }

  function attach(input) {
    var meter = document.querySelector('[data-strength-for="' + input.id + '"]');
    if (!meter || typeof window.zxcvbn !== "function") {
      return;
    }
    var bar = meter.querySelector("meter");
    var text = meter.querySelector(".strength-text");
    var minAttr = input.getAttribute("data-strength-min-score");
    var minScore = minAttr === null ? null : parseInt(minAttr, 10);
    var maxLength = parseInt(input.getAttribute("data-strength-max-length") || "0", 10);
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (described.indexOf(text.id) === -1) {
      described.push(text.id);
      input.setAttribute("aria-describedby", described.join(" "));
    }
    var timer = null;

    function update() {
      timer = null;
      var password = input.value;
      meter.setAttribute("data-score", "");
      if (!password) {
        bar.value = 0;
        text.textContent = "";
        return;
      }
      if (maxLength && password.length > maxLength) {
        bar.value = 0;
        text.textContent = "Too long: at most " + maxLength + " characters.";
        return;
      }
      var result = window.zxcvbn(password, userInputs(valuesFor(input)));
      bar.value = result.score;
      meter.setAttribute("data-score", String(result.score));
      meter.classList.toggle("strength-ok", minScore === null || result.score >= minScore);
      text.textContent = describe(result, minScore);
    }

    function schedule() {
      if (timer !== null) {
        window.clearTimeout(timer);
      }
      timer = window.setTimeout(update, 150);
    }

    input.addEventListener("input", schedule);
    (input.getAttribute("data-strength-fields") || "").split(" ").forEach(function (id) {
      var other = id ? document.getElementById(id) : null;
      if (other) {
        other.addEventListener("input", schedule);
      }
    });
    meter.hidden = false;
    if (input.value) {
      update();
    }
  }

  function start() {
    var inputs = document.querySelectorAll("input[data-strength-meter]");
    for (var i = 0; i < inputs.length; i += 1) {
      attach(inputs[i]);
    }
  }

  window.bankPortalPasswordStrength = { userInputs: userInputs };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

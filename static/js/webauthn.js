// Passkeys: registration and assertion with the browser's WebAuthn API (navigator.credentials).
// Buttons carry data-webauthn="register" | "assert", data-options-url and data-verify-url.
(function () {
  "use strict";

  function b64urlToBuffer(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    var pad = base64.length % 4 ? 4 - (base64.length % 4) : 0;
    var binary = atob(base64 + "=".repeat(pad));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function bufferToB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          if (data && data.redirect) {
            window.location.assign(data.redirect);
          }
          throw new Error((data && data.detail) || "Something went wrong. Please try again.");
        }
        return data;
      });
    });
  }

  function creationOptions(options) {
    var publicKey = Object.assign({}, options);
    publicKey.challenge = b64urlToBuffer(options.challenge);
    publicKey.user = Object.assign({}, options.user, { id: b64urlToBuffer(options.user.id) });
    publicKey.excludeCredentials = (options.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: b64urlToBuffer(c.id) });
    });
    return { publicKey: publicKey };
  }

  function requestOptions(options) {
    var publicKey = Object.assign({}, options);
    publicKey.challenge = b64urlToBuffer(options.challenge);
    publicKey.allowCredentials = (options.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: b64urlToBuffer(c.id) });
    });
    return { publicKey: publicKey };
  }

  function registrationJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: bufferToB64url(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: bufferToB64url(response.clientDataJSON),
        attestationObject: bufferToB64url(response.attestationObject),
        transports: typeof response.getTransports === "function" ? response.getTransports() : [],
      },
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null,
    };
  }

  function assertionJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: bufferToB64url(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: bufferToB64url(response.clientDataJSON),
        authenticatorData: bufferToB64url(response.authenticatorData),
        signature: bufferToB64url(response.signature),
        userHandle: response.userHandle ? bufferToB64url(response.userHandle) : null,
      },
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null,
    };
  }

  function showError(message) {
    var box = document.getElementById("passkey-error");
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  function run(button) {
    var mode = button.getAttribute("data-webauthn");
    button.disabled = true;
    var start = post(button.getAttribute("data-options-url"));
    var ceremony =
      mode === "register"
        ? start.then(function (options) {
            return navigator.credentials.create(creationOptions(options));
          }).then(function (credential) {
            var nameInput = document.getElementById(button.getAttribute("data-name-input") || "");
            return post(button.getAttribute("data-verify-url"), {
              credential: registrationJSON(credential),
              name: nameInput ? nameInput.value : "",
            });
          })
        : start.then(function (options) {
            return navigator.credentials.get(requestOptions(options));
          }).then(function (credential) {
            var remember = document.getElementById("remember_device");
            return post(button.getAttribute("data-verify-url"), {
              credential: assertionJSON(credential),
              next: button.getAttribute("data-next") || "",
              hold: button.getAttribute("data-hold") || "",
              remember_device: remember && remember.checked ? "1" : "",
            });
          });
    ceremony
      .then(function (result) {
        window.location.assign(result.redirect || "/");
      })
      .catch(function (error) {
        button.disabled = false;
        var message = error && error.name === "NotAllowedError"
          ? "The passkey request was cancelled or timed out. Please try again."
          : (error && error.message) || "The passkey did not work. Please try again.";
        showError(message);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("[data-webauthn]");
    for (var i = 0; i < buttons.length; i++) {
      (function (button) {
        if (!window.PublicKeyCredential) {
          button.disabled = true;
          showError("This browser does not support passkeys. Please choose another method.");
          return;
        }
        button.addEventListener("click", function () {
          run(button);
        });
      })(buttons[i]);
    }
  });
})();

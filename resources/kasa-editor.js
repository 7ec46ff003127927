/*
 * Editor helpers shared by every node set of this package. Each node's editor html loads this
 * file before its own script (Node-RED serves a module's resources/ folder under
 * resources/<module name>/ and runs such scripts in order), so the dialogs validate alike.
 */
(function () {
  'use strict';
  var ENV = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;
  var IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

  function textOf(value) {
    return String(value === undefined || value === null ? '' : value).trim();
  }

  /**
   * The validators and labels of one node type. Node-RED calls a validator with the node as `this` and,
   * when it wants an explanation, a second argument: then a failed check answers with the text of
   * `<type>.validation.<messageKey>` from the type's own catalog instead of a bare false.
   */
  function forType(type) {
    function say(node, key) {
      return node && typeof node._ === 'function' ? node._(key) : key;
    }
    // A validator from a check of the trimmed text. A property absent from the node (a flow from
    // an older version, or written by hand) passes: the runtime uses its default. A field the
    // user emptied is checked like any other text.
    function rule(messageKey, check) {
      return optional(function (value, opt) {
        var ok = check.call(this, textOf(value));
        return ok || (opt ? say(this, type + '.validation.' + messageKey) : false);
      });
    }
    // A number within [low, high] (whole if asked), or ${ENV_VAR} that Node-RED fills in at deploy.
    // Absent (a flow from an older version, or written by hand) is fine: the runtime uses the
    // default; a field the user emptied is not.
    function numberIn(messageKey, low, high, whole) {
      return optional(
        rule(messageKey, function (text) {
          if (ENV.test(text)) return true;
          var number = Number(text);
          return (
            text !== '' &&
            isFinite(number) &&
            number >= low &&
            number <= high &&
            (!whole || Math.floor(number) === number)
          );
        }),
      );
    }
    // Absent means the runtime's default (properties added in later versions, hand-written flows).
    function optional(validate) {
      return function (value, opt) {
        return value === undefined || validate.call(this, value, opt);
      };
    }
    // The palette shows the catalog's paletteLabel; a node shows its name, or that label.
    function paletteLabel() {
      return say(this, type + '.paletteLabel');
    }
    function label() {
      return this.name || paletteLabel.call(this);
    }
    function labelStyle() {
      return this.name ? 'node_label_italic' : '';
    }
    function absentProperties(node) {
      return Object.keys(RED.nodes.getType(type).defaults).filter(function (name) {
        return node[name] === undefined;
      });
    }
    // Called from the dialog's oneditprepare: a property absent from the node (an older or
    // hand-written flow) shows its default instead of an empty field marked invalid.
    function showDefaults() {
      var absent = absentProperties(this);
      var definition = RED.nodes.getType(type);
      var prefix = definition.category === 'config' ? '#node-config-input-' : '#node-input-';
      absent.forEach(function (name) {
        var fallback = definition.defaults[name].value;
        if (fallback === undefined || fallback === '') return;
        var input = $(prefix + name);
        if (input.is(':checkbox')) input.prop('checked', Boolean(fallback));
        else input.val(fallback);
      });
    }
    return {
      say: say,
      rule: rule,
      numberIn: numberIn,
      paletteLabel: paletteLabel,
      label: label,
      labelStyle: labelStyle,
      showDefaults: showDefaults,
    };
  }

  window.KasaMonitorEditor = { ENV: ENV, IPV4: IPV4, textOf: textOf, forType: forType };
})();

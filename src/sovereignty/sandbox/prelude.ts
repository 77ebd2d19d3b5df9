/**
 * The runner that lives inside each cartridge's engine context. It is evaluated before the
 * cartridge source, so it captures the intrinsics it needs before cartridge code can replace
 * them, and its completion value (the `bind` function) is held only by the worker, never by a
 * global the cartridge could reach. It is best effort: the host re-validates every result.
 *
 * `bind(entry, emitsJson)` returns `run(eventJson, maxChars, maxEmits)`, which parses the event
 * (so the cartridge gets a copy), calls the entry point with a frozen `ctx`, and answers JSON text:
 * `{"r": <event|null>, "e": [{"type","payload"}...]}` or `{"x": <code>, "m": <message>}`.
 */
export const PRELUDE = `(function () {
  'use strict';
  var parse = JSON.parse;
  var stringify = JSON.stringify;
  var freeze = Object.freeze;
  var create = Object.create;
  var isArray = Array.isArray;
  var StringC = String;
  var TypeErrorC = TypeError;
  var RangeErrorC = RangeError;
  // Engine extras no cartridge needs: wasm memory is allocated outside the heap limit.
  delete globalThis.WebAssembly;

  function describe(err) {
    try {
      if (err !== null && typeof err === 'object') {
        var name = typeof err.name === 'string' ? err.name : 'Error';
        var message = typeof err.message === 'string' ? err.message : '';
        return name + ': ' + message;
      }
      return 'thrown ' + typeof err + ': ' + StringC(err);
    } catch (e) {
      return 'a value that cannot be described';
    }
  }
  function fail(code, message) {
    var m = StringC(message);
    return stringify({ x: code, m: m.length > 500 ? m.slice(0, 500) + '...' : m });
  }
  function typeName(v) {
    if (v === null) return 'null';
    if (isArray(v)) return 'an array';
    return typeof v;
  }

  return function bind(entry, emitsJson) {
    var allowed = create(null);
    var list = parse(emitsJson);
    for (var i = 0; i < list.length; i++) allowed[list[i]] = true;

    return function run(eventJson, maxChars, maxEmits) {
      try {
        var event = parse(eventJson);
        // A null-prototype store and our own counter: a cartridge that defines accessors on
        // Array.prototype (or Object.prototype) cannot make an element vanish from the count.
        var emitted = create(null);
        var count = 0;
        var size = 0;
        var problem = null;
        var ctx = freeze({
          emit: function emit(type, payload) {
            if (typeof type !== 'string' || allowed[type] !== true) {
              var shown = typeof type === 'string' ? "'" + type.slice(0, 128) + "'" : 'of type ' + typeName(type);
              if (problem === null) problem = fail('WEFT_CARTRIDGE_EMIT_UNDECLARED', 'ctx.emit refused event type ' + shown + ': not declared in the manifest');
              throw new TypeErrorC('ctx.emit: event type ' + shown + ' is not declared in the manifest');
            }
            if (count >= maxEmits) {
              if (problem === null) problem = fail('WEFT_CARTRIDGE_RESULT_TOO_LARGE', 'more than ' + maxEmits + ' events emitted for one event');
              throw new RangeErrorC('ctx.emit: more than ' + maxEmits + ' events');
            }
            var text;
            try {
              text = stringify({ type: type, payload: payload === undefined ? {} : payload });
            } catch (e) {
              if (problem === null) problem = fail('WEFT_CARTRIDGE_BAD_RESULT', 'emitted payload is not JSON: ' + describe(e));
              throw e;
            }
            size += text.length;
            if (size > maxChars) {
              if (problem === null) problem = fail('WEFT_CARTRIDGE_RESULT_TOO_LARGE', 'emitted events exceed ' + maxChars + ' characters');
              throw new RangeErrorC('ctx.emit: emitted events too large');
            }
            emitted[count] = text;
            count++;
          },
        });
        var result;
        try {
          result = entry(event, ctx);
        } catch (e) {
          return problem !== null ? problem : fail('WEFT_CARTRIDGE_THREW', describe(e));
        }
        if (problem !== null) return problem;
        var out = 'null';
        if (result !== undefined && result !== null) {
          if (typeof result !== 'object' || isArray(result)) {
            return fail('WEFT_CARTRIDGE_BAD_RESULT', 'process returned ' + typeName(result) + ', not an event object, null or undefined');
          }
          if (typeof result.then === 'function') {
            return fail('WEFT_CARTRIDGE_BAD_RESULT', 'process returned a promise: cartridges are synchronous');
          }
          try {
            out = stringify(result);
          } catch (e) {
            return fail('WEFT_CARTRIDGE_BAD_RESULT', 'returned event is not JSON: ' + describe(e));
          }
          if (typeof out !== 'string') return fail('WEFT_CARTRIDGE_BAD_RESULT', 'returned event has no JSON form');
          if (out.length + size > maxChars) {
            return fail('WEFT_CARTRIDGE_RESULT_TOO_LARGE', 'result exceeds ' + maxChars + ' characters');
          }
        }
        var e = '';
        for (var j = 0; j < count; j++) e += (j === 0 ? '' : ',') + emitted[j];
        return '{"r":' + out + ',"e":[' + e + ']}';
      } catch (err) {
        return fail('WEFT_CARTRIDGE_THREW', describe(err));
      }
    };
  };
})()`;

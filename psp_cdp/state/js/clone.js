// structured-clone-v1: every structured-cloneable value as flat JSON text.
//
// encode(value) -> Promise<string>; decode(text) -> Promise<value>. The format is
// documented in docs/structured-clone.md. Both walk the value with an explicit work
// list, never recursion, so values nested thousands of levels deep are fine; shared
// references and cycles come back as shared references and cycles.
(() => {
  const TYPED = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
    "Uint32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"];
  const ERRORS = ["Error", "EvalError", "RangeError", "ReferenceError", "SyntaxError", "TypeError", "URIError"];
  const GEOMETRY = {
    DOMPoint: ["x", "y", "z", "w"], DOMPointReadOnly: ["x", "y", "z", "w"],
    DOMRect: ["x", "y", "width", "height"], DOMRectReadOnly: ["x", "y", "width", "height"],
  };
  const MATRIX = ["m11", "m12", "m13", "m14", "m21", "m22", "m23", "m24",
    "m31", "m32", "m33", "m34", "m41", "m42", "m43", "m44"];
  const tagOf = (v) => Object.prototype.toString.call(v).slice(8, -1);

  const toBase64 = (bytes) => {
    if (bytes.toBase64) return bytes.toBase64();
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const fromBase64 = (text) => {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const s = atob(text), out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  };

  function number(n) {
    if (Number.isNaN(n)) return ["NaN"];
    if (n === Infinity) return ["Infinity"];
    if (n === -Infinity) return ["-Infinity"];
    if (Object.is(n, -0)) return ["-0"];
    return n;
  }
  function unnumber(c) {
    if (typeof c === "number") return c;
    return {"NaN": NaN, "Infinity": Infinity, "-Infinity": -Infinity, "-0": -0}[c[0]];
  }

  class CloneError extends Error {}

  async function encode(root) {
    const ids = new Map(), nodes = [], work = [], pending = [];
    const child = (v) => {
      switch (typeof v) {
        case "string": case "boolean": return v;
        case "number": return number(v);
        case "undefined": return ["u"];
        case "bigint": return ["n", v.toString()];
        case "symbol": throw new CloneError("a Symbol cannot be cloned");
        case "function": throw new CloneError("a function cannot be cloned");
      }
      if (v === null) return null;
      let id = ids.get(v);
      if (id === undefined) {
        id = nodes.length;
        ids.set(v, id);
        nodes.push(null);
        work.push(v);
      }
      return [id];
    };
    const ref = (v) => child(v)[0];
    const props = (v, node, skip) => {
      for (const k of Object.keys(v)) if (!skip || !skip(k)) node.push(k, child(v[k]));
      return node;
    };
    const top = child(root);
    for (let i = 0; i < work.length; i++) {
      const v = work[i], id = ids.get(v), tag = tagOf(v);
      let node;
      if (Array.isArray(v)) {
        const keys = Object.keys(v);
        if (keys.length === v.length && keys.every((k, j) => k === String(j))) {
          node = ["Array", v.length];
          for (let j = 0; j < v.length; j++) node.push(child(v[j]));
        } else {
          node = props(v, ["SparseArray", v.length]);
        }
      } else if (ArrayBuffer.isView(v)) {
        const name = tag === "DataView" ? "DataView" : TYPED.find((t) => globalThis[t] && v instanceof globalThis[t]);
        if (!name) throw new CloneError(`cannot clone a ${tag}`);
        node = [name, ref(v.buffer), v.byteOffset, name === "DataView" ? v.byteLength : v.length];
      } else if (tag === "ArrayBuffer") {
        node = ["ArrayBuffer", toBase64(new Uint8Array(v)), v.resizable ? v.maxByteLength : null];
      } else if (tag === "Date") {
        node = ["Date", number(v.getTime())];
      } else if (tag === "RegExp") {
        node = ["RegExp", v.source, v.flags];
      } else if (tag === "Map") {
        node = ["Map"];
        for (const [k, x] of v) node.push(child(k), child(x));
      } else if (tag === "Set") {
        node = ["Set"];
        for (const x of v) node.push(child(x));
      } else if (tag === "Boolean") {
        node = ["Boolean", v.valueOf()];
      } else if (tag === "Number") {
        node = ["Number", number(v.valueOf())];
      } else if (tag === "String") {
        node = ["String", v.valueOf()];
      } else if (tag === "BigInt") {
        node = ["BigInt", v.valueOf().toString()];
      } else if (tag === "Error" || v instanceof Error) {
        const name = ERRORS.includes(v.name) ? v.name : "Error";
        const own = Object.prototype.hasOwnProperty;
        node = ["Error", name, own.call(v, "message") ? String(v.message) : null,
          typeof v.stack === "string" ? v.stack : null];
      } else if (tag === "File") {
        node = ["File", v.name, v.type, v.lastModified, null];
        pending.push(v.arrayBuffer().then((b) => { node[4] = toBase64(new Uint8Array(b)); }));
      } else if (tag === "Blob") {
        node = ["Blob", v.type, null];
        pending.push(v.arrayBuffer().then((b) => { node[2] = toBase64(new Uint8Array(b)); }));
      } else if (tag === "FileList") {
        node = ["FileList"];
        for (const f of v) node.push(ref(f));
      } else if (tag === "ImageData") {
        node = ["ImageData", v.width, v.height, toBase64(new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength)),
          v.colorSpace || "srgb"];
      } else if (tag === "DOMException") {
        node = ["DOMException", v.name, v.message];
      } else if (GEOMETRY[tag]) {
        node = [tag, ...GEOMETRY[tag].map((k) => number(v[k]))];
      } else if (tag === "DOMQuad") {
        node = ["DOMQuad", ...["p1", "p2", "p3", "p4"].map((p) => ref(v[p]))];
      } else if (tag === "DOMMatrix" || tag === "DOMMatrixReadOnly") {
        node = [tag, v.is2D, ...MATRIX.map((k) => number(v[k]))];
      } else if (tag === "CryptoKey") {
        if (!v.extractable) throw new CloneError("a CryptoKey that is not extractable cannot be read out of the browser");
        const algorithm = {...v.algorithm};
        if (algorithm.publicExponent) algorithm.publicExponent = Array.from(algorithm.publicExponent);
        node = ["CryptoKey", JSON.stringify(algorithm), v.extractable, v.usages.slice(), null];
        pending.push(crypto.subtle.exportKey("jwk", v).then((jwk) => { node[4] = JSON.stringify(jwk); }));
      } else if (tag === "Object" || Object.getPrototypeOf(v) === null || Object.getPrototypeOf(v) === Object.prototype) {
        node = props(v, ["Object"]);
      } else {
        throw new CloneError(`cannot clone a ${tag}`);
      }
      nodes[id] = node;
    }
    await Promise.all(pending);
    return JSON.stringify({v: 1, r: top, n: nodes});
  }

  async function decode(text) {
    const data = JSON.parse(text);
    if (data.v !== 1) throw new CloneError(`unknown structured-clone version ${data.v}`);
    const nodes = data.n, objects = new Array(nodes.length);
    const value = (c) => {
      if (c === null || typeof c !== "object") return c;
      if (c.length === 1 && typeof c[0] === "number") return objects[c[0]];
      if (c[0] === "u") return undefined;
      if (c[0] === "n") return BigInt(c[1]);
      return unnumber(c);
    };
    const later = [];
    // Leaves and empty containers first, then views over buffers, then contents.
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i], kind = node[0];
      switch (kind) {
        case "Object": objects[i] = {}; break;
        case "Array": case "SparseArray": objects[i] = new Array(node[1]); break;
        case "Map": objects[i] = new Map(); break;
        case "Set": objects[i] = new Set(); break;
        case "Date": objects[i] = new Date(unnumber(node[1])); break;
        case "RegExp": objects[i] = new RegExp(node[1], node[2]); break;
        case "Boolean": objects[i] = new Boolean(node[1]); break;
        case "Number": objects[i] = new Number(unnumber(node[1])); break;
        case "String": objects[i] = new String(node[1]); break;
        case "BigInt": objects[i] = Object(BigInt(node[1])); break;
        case "Error": {
          const e = node[2] === null ? new globalThis[node[1]]() : new globalThis[node[1]](node[2]);
          if (node[3] !== null) e.stack = node[3];
          objects[i] = e;
          break;
        }
        case "ArrayBuffer": {
          const bytes = fromBase64(node[1]);
          const buffer = node[2] === null ? new ArrayBuffer(bytes.length) : new ArrayBuffer(bytes.length, {maxByteLength: node[2]});
          new Uint8Array(buffer).set(bytes);
          objects[i] = buffer;
          break;
        }
        case "Blob": objects[i] = new Blob([fromBase64(node[2])], {type: node[1]}); break;
        case "File": objects[i] = new File([fromBase64(node[4])], node[1], {type: node[2], lastModified: node[3]}); break;
        case "ImageData":
          objects[i] = new ImageData(new Uint8ClampedArray(fromBase64(node[3]).buffer), node[1], node[2], {colorSpace: node[4]});
          break;
        case "DOMException": objects[i] = new DOMException(node[2], node[1]); break;
        case "DOMPoint": case "DOMPointReadOnly": case "DOMRect": case "DOMRectReadOnly":
          objects[i] = new globalThis[kind](...node.slice(1).map(unnumber));
          break;
        case "DOMMatrix": case "DOMMatrixReadOnly": {
          const m = node.slice(2).map(unnumber);
          objects[i] = new globalThis[kind](node[1] ? [m[0], m[1], m[4], m[5], m[12], m[13]] : m);
          break;
        }
        case "CryptoKey": {
          const algorithm = JSON.parse(node[1]);
          if (algorithm.publicExponent) algorithm.publicExponent = new Uint8Array(algorithm.publicExponent);
          objects[i] = await crypto.subtle.importKey("jwk", JSON.parse(node[4]), algorithm, node[2], node[3]);
          break;
        }
        default:
          if (kind === "DataView" || TYPED.includes(kind) || kind === "FileList" || kind === "DOMQuad") later.push(i);
          else throw new CloneError(`unknown node kind ${kind}`);
      }
    }
    for (const i of later) {
      const node = nodes[i], kind = node[0];
      if (kind === "FileList") {
        const transfer = new DataTransfer();
        for (const f of node.slice(1)) transfer.items.add(objects[f]);
        objects[i] = transfer.files;
      } else if (kind === "DOMQuad") {
        objects[i] = new DOMQuad(...node.slice(1).map((p) => objects[p]));
      } else if (!globalThis[kind]) {
        throw new CloneError(`this browser has no ${kind}`);
      } else {
        objects[i] = new globalThis[kind](objects[node[1]], node[2], node[3] === null ? undefined : node[3]);
      }
    }
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i], o = objects[i];
      switch (node[0]) {
        case "Object": case "SparseArray":
          for (let j = node[0] === "Object" ? 1 : 2; j < node.length; j += 2) {
            Object.defineProperty(o, node[j], {value: value(node[j + 1]), writable: true, enumerable: true, configurable: true});
          }
          break;
        case "Array":
          for (let j = 2; j < node.length; j++) o[j - 2] = value(node[j]);
          break;
        case "Map":
          for (let j = 1; j < node.length; j += 2) o.set(value(node[j]), value(node[j + 1]));
          break;
        case "Set":
          for (let j = 1; j < node.length; j++) o.add(value(node[j]));
          break;
      }
    }
    return value(data.r);
  }

  return {encode, decode, CloneError, toBase64, fromBase64};
})()

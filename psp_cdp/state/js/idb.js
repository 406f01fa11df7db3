// Reading and writing the IndexedDB databases of the page's storage key.
// Keys and values cross as structured-clone-v1 text (clone.js, passed in as C).
(C) => {
  const connections = new Map();
  const request = (r) => new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  // An open or a delete that other connections block: they had their versionchange event and are still
  // open. A page that closes its connection a little later is waited for; one that keeps it is not.
  const BLOCKED_GRACE = 2000;
  const unblocked = (r, what) => new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.onblocked = () => setTimeout(() => reject(new Error(
      `${what} is held open by a page of this origin that does not close it when asked (blocked)`)), BLOCKED_GRACE);
  });
  const withTimeout = (promise, ms, what) => Promise.race([promise, new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s (being upgraded or blocked?)`)), ms))]);
  const done = (tx) => new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
  const message = (e) => (e && (e.name ? `${e.name}: ${e.message}` : String(e))) || "unknown error";

  async function open(name, version, upgrade) {
    if (!version && connections.has(name)) return connections.get(name);
    const r = version ? indexedDB.open(name, version) : indexedDB.open(name);
    if (upgrade) r.onupgradeneeded = () => upgrade(r.result, r.transaction);
    const what = `database ${JSON.stringify(name)}`;
    const db = await withTimeout(unblocked(r, what), 10000, what);
    db.onversionchange = () => { db.close(); connections.delete(name); };
    if (!version) connections.set(name, db);
    return db;
  }

  function closeAll() {
    for (const db of connections.values()) db.close();
    connections.clear();
  }

  async function keyGenerator(db, storeName) {
    // The next generated key is only observable by generating one: add a record,
    // read its key and abort, which reverts the generator.
    const tx = db.transaction(storeName, "readwrite");
    const store = tx.objectStore(storeName);
    let key = null, failure = null;
    try {
      key = await request(store.keyPath === null ? store.add(null) : store.add({}));
    } catch (e) {
      failure = e;
    }
    try { tx.abort(); } catch (e) { /* already finished */ }
    if (failure && failure.name === "ConstraintError") return 2 ** 53 + 1;  // the generator is spent
    if (failure) throw failure;
    return key;
  }

  async function schema() {
    const out = [];
    for (const info of await indexedDB.databases()) {
      const entry = {name: info.name, version: info.version, stores: [], error: null};
      out.push(entry);
      try {
        const db = await open(info.name);
        entry.version = db.version;
        for (const storeName of db.objectStoreNames) {
          const tx = db.transaction(storeName, "readonly");
          const store = tx.objectStore(storeName);
          const s = {name: storeName, keyPath: store.keyPath, autoIncrement: store.autoIncrement, indexes: [],
            count: await request(store.count()), keyGenerator: null};
          for (const indexName of store.indexNames) {
            const index = store.index(indexName);
            s.indexes.push({name: indexName, keyPath: index.keyPath, unique: index.unique, multiEntry: index.multiEntry});
          }
          if (store.autoIncrement) {
            s.keyGenerator = await withTimeout(keyGenerator(db, storeName), 10000, `object store ${JSON.stringify(storeName)}`);
          }
          entry.stores.push(s);
        }
      } catch (e) {
        entry.error = message(e);
      }
    }
    return JSON.stringify(out);
  }

  // Up to maxCount records after `after` (a key's text, or null), cut at about maxChars
  // of text: {records: [keyText, valueText, ...], errors: [[keyText, reason]], last, done}.
  // Records are fetched a few at first, then as many as the text budget is likely to
  // hold, judged by the size of the records read so far.
  const perRecord = new Map();

  async function read(dbName, storeName, after, maxCount, maxChars) {
    const db = await open(dbName);
    const range = after === null ? null : IDBKeyRange.lowerBound(await C.decode(after), true);
    const estimate = perRecord.get(dbName + "\u0000" + storeName);
    const count = Math.max(1, Math.min(maxCount, estimate ? Math.ceil(maxChars / estimate) : 32));
    const tx = db.transaction(storeName, "readonly");
    const store = tx.objectStore(storeName);
    const [keys, values] = await Promise.all([request(store.getAllKeys(range, count)), request(store.getAll(range, count))]);
    const records = [], errors = [];
    let chars = 0, last = after, cut = false;
    for (let i = 0; i < keys.length; i++) {
      const keyText = await C.encode(keys[i]);
      last = keyText;
      try {
        const valueText = await C.encode(values[i]);
        records.push(keyText, valueText);
        chars += keyText.length + valueText.length;
      } catch (e) {
        errors.push([keyText, message(e)]);
      }
      if (chars >= maxChars && i < keys.length - 1) { cut = true; break; }
    }
    const seen = records.length / 2 + errors.length;
    if (seen) perRecord.set(dbName + "\u0000" + storeName, Math.max(1, chars / seen));
    return JSON.stringify({records, errors, last, done: !cut && keys.length < count});
  }

  // Whether the database can be had alone: an upgrade to the next version is asked for, and aborted
  // when it comes (nothing changes). Pages holding it open get versionchange; if one keeps it open, the
  // upgrade never comes and the database is left alone: never a delete that would wait for the page and
  // then run, long after this restore gave up.
  async function alone(name) {
    const what = `database ${JSON.stringify(name)}`;
    const db = await withTimeout(request(indexedDB.open(name)), 10000, what);
    const next = db.version + 1;
    db.close();
    const r = indexedDB.open(name, next);
    r.onupgradeneeded = () => r.transaction.abort();
    await withTimeout(unblocked(r, what).then((upgraded) => upgraded.close(), (e) => {
      if (!e || e.name !== "AbortError") throw e;  // the abort: as it was, and nobody else has it open
    }), 10000, what);
  }

  // Delete every database; [name, reason] of those that could not be, and [name, reason] of those held open.
  async function clear() {
    closeAll();
    const failed = [], held = [];
    for (const info of await indexedDB.databases()) {
      try {
        await alone(info.name);
      } catch (e) {
        held.push([info.name, message(e)]);
        continue;
      }
      try {
        const what = `database ${JSON.stringify(info.name)}`;
        await withTimeout(unblocked(indexedDB.deleteDatabase(info.name), what), 10000, `deleting ${what}`);
      } catch (e) {
        failed.push([info.name, message(e)]);
      }
    }
    return {failed, held};
  }

  async function create(dbName, version, stores) {
    const db = await open(dbName, version, (db) => {
      for (const s of stores) {
        const options = {autoIncrement: s.autoIncrement};
        if (s.keyPath !== null) options.keyPath = s.keyPath;
        const store = db.createObjectStore(s.name, options);
        for (const i of s.indexes) store.createIndex(i.name, i.keyPath, {unique: i.unique, multiEntry: i.multiEntry});
      }
    });
    connections.set(dbName, db);
    return db.version;
  }

  // Put records ([keyText, valueText, ...]); the keys of those that failed, with the reason.
  async function write(dbName, storeName, records, inline) {
    const db = await open(dbName);
    const decoded = [], failed = [];
    for (let i = 0; i < records.length; i += 2) {
      try {
        decoded.push([records[i], await C.decode(records[i]), await C.decode(records[i + 1])]);
      } catch (e) {
        failed.push([records[i], message(e)]);
      }
    }
    const tx = db.transaction(storeName, "readwrite");
    const store = tx.objectStore(storeName);
    for (const [text, key, value] of decoded) {
      try {
        const r = inline ? store.put(value) : store.put(value, key);
        r.onerror = (event) => { failed.push([text, message(r.error)]); event.preventDefault(); };
      } catch (e) {
        failed.push([text, message(e)]);
      }
    }
    await done(tx);
    return failed;
  }

  // Move the store's key generator up to `next` (the next key it will generate).
  async function setKeyGenerator(dbName, storeName, next, keyPath) {
    const db = await open(dbName);
    if (await keyGenerator(db, storeName) >= next) return;
    const key = next - 1;
    const tx = db.transaction(storeName, "readwrite");
    const store = tx.objectStore(storeName);
    if (keyPath === null) {
      store.put(null, key);
    } else {
      const value = {};
      let at = value;
      const parts = keyPath.split(".");
      parts.slice(0, -1).forEach((p) => { at = at[p] = {}; });
      at[parts[parts.length - 1]] = key;
      store.put(value);
    }
    store.delete(key);
    await done(tx);
  }

  return {schema, read, clear, create, write, setKeyGenerator, closeAll};
}

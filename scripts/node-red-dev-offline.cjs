// Preload for `node-red-dev validate` (node --require): answers its requests for the Node-RED
// flow library catalogue (https://catalogue.nodered.org/catalogue.json, checks P08 and N01) from
// the local file named by KASA_CATALOGUE, so validation needs no access to catalogue.nodered.org.
// Every other request (the npm registry for P06, P07, D02 and D03) goes out unchanged.
'use strict';
const { readFileSync } = require('node:fs');
const { dirname } = require('node:path');

const CATALOGUE_URL = 'https://catalogue.nodered.org/';
const file = process.env.KASA_CATALOGUE;
if (!file) throw new Error('node-red-dev-offline: set KASA_CATALOGUE to a catalogue JSON file');

// node-red-dev requires its own copy of axios; patch that very module instance.
const toolDir = dirname(require.resolve('node-red-dev/package.json'));
const axios = require(require.resolve('axios', { paths: [toolDir] }));
const realGet = axios.get.bind(axios);
axios.get = function get(url, ...rest) {
  if (typeof url === 'string' && url.startsWith(CATALOGUE_URL)) {
    const data = JSON.parse(readFileSync(file, 'utf8'));
    return Promise.resolve({ status: 200, statusText: 'OK', headers: {}, config: {}, data });
  }
  return realGet(url, ...rest);
};

// Drives Pipedrive's official Node.js client (npm "pipedrive") against the sandbox and prints
// what it saw as one JSON line. Usage: node scenarios.js <token|oauth|errors|timeline> <sandbox-url> <json-args>
// The Python side (test_pipedrive_contract.py) asserts on the output; this file only calls the client.
"use strict";

const v1 = require("pipedrive/v1");
const v2 = require("pipedrive/v2");

const [scenario, url, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs || "{}");

// The client rejects with the response body (its errorInterceptor); keep status-free bodies as they are.
async function caught(promise) {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, body: error && error.success !== undefined ? error : { message: String(error) } };
  }
}

async function walkPersons(persons, limit) {
  const ids = [];
  let cursor;
  for (let page = 0; page < 100; page++) {
    const response = await persons.getPersons({ limit, cursor });
    ids.push(...response.data.map((p) => p.id));
    cursor = response.additional_data && response.additional_data.next_cursor;
    if (!cursor) return ids;
  }
  throw new Error("paging did not end");
}

async function tokenScenario() {
  const config2 = new v2.Configuration({ apiKey: args.apiToken, basePath: `${url}/api/v2` });
  const config1 = new v1.Configuration({ apiKey: args.apiToken, basePath: `${url}/api/v1` });
  const persons = new v2.PersonsApi(config2);
  const out = {};
  out.walked = await walkPersons(persons, 7);
  const field = await new v1.PersonFieldsApi(config1).addPersonField({
    CreateFieldRequest: { name: "Pronouns", field_type: "enum", options: [{ label: "she/her" }, { label: "they/them" }] },
  });
  out.field = field.data;
  const created = await persons.addPerson({
    AddPersonRequest: {
      name: "Grace Hopper",
      emails: [{ value: "grace@example.com", primary: true, label: "work" }],
      custom_fields: { [field.data.key]: field.data.options[1].id },
    },
  });
  out.created = created.data;
  out.updated = (await persons.updatePerson({ id: created.data.id, UpdatePersonRequest: { job_title: "Admiral" } })).data;
  out.fetched = (await persons.getPerson({ id: created.data.id })).data;
  out.search = (await persons.searchPersons({ term: "Grace", fields: "name" })).data;
  out.since = (await persons.getPersons({ updated_since: args.since, limit: 500 })).data.map((p) => p.id);
  out.deals = (await new v2.DealsApi(config2).getDeals({ limit: 3, sort_by: "update_time", sort_direction: "desc" }));
  out.organizations = (await new v2.OrganizationsApi(config2).getOrganizations({ limit: 500 })).data.length;
  out.pipelines = (await new v2.PipelinesApi(config2).getPipelines()).data;
  out.stages = (await new v2.StagesApi(config2).getStages({ pipeline_id: 1 })).data;
  out.me = (await new v1.UsersApi(config1).getCurrentUser()).data;
  out.note = (await new v1.NotesApi(config1).addNote({ AddNoteRequest: { content: "Hello", person_id: created.data.id } })).data;
  out.deleted = (await persons.deletePerson({ id: created.data.id })).data;
  out.gone = await caught(persons.getPerson({ id: created.data.id }));
  return out;
}

async function oauthScenario() {
  const oauth2 = new v2.OAuth2Configuration({
    clientId: args.clientId, clientSecret: args.clientSecret, redirectUri: args.redirectUri, host: url,
  });
  const updates = [];
  oauth2.onTokenUpdate = (token) => updates.push(Object.keys(token).sort());
  const out = { authorizationUrl: oauth2.authorizationUrl };
  const token = await oauth2.authorize(args.code);
  out.token = { api_domain: token.api_domain, token_type: token.token_type, expires_in: token.expires_in };
  out.basePath = oauth2.basePath;
  const config = new v2.Configuration({ accessToken: oauth2.getAccessToken, basePath: oauth2.basePath });
  const persons = new v2.PersonsApi(config);
  out.first = (await persons.getPersons({ limit: 2 })).data.map((p) => p.id);
  const before = oauth2.accessToken;
  // The sandbox expires every access token; the client learns it the way it would from expires_in.
  await fetch(`${url}/_sandbox/oauth/expire`, { method: "POST" });
  oauth2.expiresAt = Date.now() - 1000;
  out.afterRefresh = (await persons.getPerson({ id: 1 })).data.id;
  out.refreshed = oauth2.accessToken !== before;
  out.updates = updates;
  return out;
}

async function errorsScenario() {
  const good = new v2.PersonsApi(new v2.Configuration({ apiKey: args.apiToken, basePath: `${url}/api/v2` }));
  const bad = new v2.PersonsApi(new v2.Configuration({ apiKey: "not-a-token", basePath: `${url}/api/v2` }));
  const fields = new v1.PersonFieldsApi(new v1.Configuration({ apiKey: args.apiToken, basePath: `${url}/api/v1` }));
  return {
    unauthorized: await caught(bad.getPersons({})),
    missingName: await caught(good.addPerson({ AddPersonRequest: { emails: [] } })),
    badField: await caught(fields.addPersonField({ CreateFieldRequest: { name: "X", field_type: "enum" } })),
    limited: await caught((async () => {
      for (let n = 0; n < 20; n++) await good.searchPersons({ term: "an" });
      return "never limited";
    })()),
  };
}

// Notes (v1) and activities (v2) as the timeline pull reads, edits and deletes them.
async function timelineScenario() {
  const config2 = new v2.Configuration({ apiKey: args.apiToken, basePath: `${url}/api/v2` });
  const config1 = new v1.Configuration({ apiKey: args.apiToken, basePath: `${url}/api/v1` });
  const notes = new v1.NotesApi(config1);
  const activities = new v2.ActivitiesApi(config2);
  const out = {};
  const page = await notes.getNotes({ sort: "update_time ASC, id ASC", updated_since: args.since, limit: 3 });
  out.notePage = { ids: page.data.map((n) => n.id), pagination: page.additional_data.pagination };
  out.noteUpdated = (await notes.updateNote({ id: 1, NoteRequest: { content: "<p>Edited</p>" } })).data;
  out.noteFetched = (await notes.getNote({ id: 1 })).data;
  out.noteDeleted = (await notes.deleteNote({ id: 2 })).data;
  const first = await activities.getActivities({ limit: 2 });
  out.activityPage = { ids: first.data.map((a) => a.id), next: first.additional_data.next_cursor };
  const second = await activities.getActivities({ limit: 2, cursor: first.additional_data.next_cursor });
  out.activityNext = second.data.map((a) => a.id);
  out.activityFetched = (await activities.getActivity({ id: 1 })).data;
  out.activityUpdated = (await activities.updateActivity({ id: 1, AddActivityRequest: { done: true, subject: "Done now" } })).data;
  out.activityDeleted = (await activities.deleteActivity({ id: 2 })).data;
  out.since = (await activities.getActivities({ updated_since: args.since, sort_by: "update_time" })).data.map((a) => a.id);
  out.gone = await caught(activities.getActivity({ id: 2 }));
  return out;
}

const scenarios = { token: tokenScenario, oauth: oauthScenario, errors: errorsScenario, timeline: timelineScenario };
scenarios[scenario]().then(
  (result) => process.stdout.write(JSON.stringify(result) + "\n"),
  (error) => {
    process.stderr.write(JSON.stringify(error && error.success !== undefined ? error : String(error && error.stack || error)) + "\n");
    process.exit(1);
  },
);

"""The cache's schema on PostgreSQL: the same tables as ``crm.store.schema``, and the search.

``PG_MIGRATIONS[i]`` takes a PostgreSQL cache from version ``i`` to ``i + 1``, step for
step with SQLite's ``MIGRATIONS`` (a step SQLite needs and PostgreSQL does not is an empty
script), so one ``SCHEMA_VERSION`` names the same schema on both backends. The version
lives in the ``schema_version`` table; ``crm.store.pg`` applies missing steps under an
advisory lock. Append; never edit a shipped step.

Version 1 is SQLite's version 1 translated mechanically (``_from_sqlite``): TEXT is text,
INTEGER bigint, REAL double precision, and ``id INTEGER PRIMARY KEY`` (SQLite's
auto-numbered rowid) an identity column. Numbered by default, not always, so that a
SQLite cache can be copied in with its ids (the copier then moves the sequence past them).

Contacts search: SQLite's FTS5 index (``unicode61 remove_diacritics 2``, every word a
prefix, phone numbers also as bare digits: whole, last 10, last 7) is reproduced by a GIN
index over an expression, ``crm_contacts_search(...)``, so no column is added to
``contacts`` and nothing has to keep it in step. The expression folds text the way
unicode61 does, in SQL the server ships with (no extension):

- ``lower()``, which needs a Unicode-aware LC_CTYPE (checked before migrating);
- ``translate()`` with ``_FOLD``, the characters unicode61 folds differently from
  ``lower()`` (diacritics removed from Latin letters, a few combining marks dropped);
- every run of characters outside ``_TOKEN_RANGES`` (unicode61's token characters:
  letters, numbers, private use) becomes a word break.

Both tables were generated from SQLite 3.40's unicode61 and PostgreSQL 15's ``lower()``
(tests/store_pg/test_search.py regenerates them and fails when they drift). The words are
stored with ``array_to_tsvector``, without positions, and matched with prefix tsqueries.
A search word unicode61 splits (``ann_lee``; FTS5 reads it as a phrase) is matched by the
index on its parts and then checked for adjacency in one field (``CONTACTS_PHRASE_MATCH``).
Known difference from FTS5, rare: scripts newer than SQLite's Unicode tables (Cherokee,
Georgian Mtavruli capitals, a few Cyrillic and Greek additions) are case-folded here and
not by SQLite.
"""

from __future__ import annotations

import bisect
import re

from crm.store.schema import V1, V5_INTERACTIONS, V7_CONNECTIONS_TABLE, V8_LINKS, adopt_existing_portal

# unicode61's token characters up to U+2FFFF, as hex code point ranges.
_TOKEN_RANGES = (
    "30-39 41-5a 61-7a aa b2-b3 b5 b9-ba bc-be c0-d6 d8-f6 f8-2c1 2c6-2d1 2e0-2e4 2ec 2ee 300-304 "
    "306-30c 30f 311 31b 323-328 32d-32e 330-331 370-374 376-37d 37f-383 386 388-3f5 3f7-481 48a-559 "
    "560-588 58b-58e 590 5c8-5f2 5f5-5ff 605 61c-61d 620-64a 660-669 66e-66f 671-6d3 6d5 6e5-6e6 "
    "6ee-6fc 6ff 70e 710 712-72f 74b-7a5 7b1-7ea 7f4-7f5 7fa-815 81a 824 828 82e-82f 83f-858 85c-85d "
    "85f-8e3 8ff 904-939 93d 950 958-961 966-96f 971-980 984-9bb 9bd 9c5-9c6 9c9-9ca 9ce-9d6 9d8-9e1 "
    "9e4-9f1 9f4-9f9 9fc-a00 a04-a3b a3d a43-a46 a49-a4a a4e-a50 a52-a6f a72-a74 a76-a80 a84-abb abd "
    "ac6 aca ace-ae1 ae4-aef af2-b00 b04-b3b b3d b45-b46 b49-b4a b4e-b55 b58-b61 b64-b6f b71-b81 "
    "b83-bbd bc3-bc5 bc9 bce-bd6 bd8-bf2 bfb-c00 c04-c3d c45 c49 c4e-c54 c57-c61 c64-c7e c80-c81 "
    "c84-cbb cbd cc5 cc9 cce-cd4 cd7-ce1 ce4-d01 d04-d3d d45 d49 d4e-d56 d58-d61 d64-d78 d7a-d81 "
    "d84-dc9 dcb-dce dd5 dd7 de0-df1 df5-e30 e32-e33 e3b-e3e e40-e46 e50-e59 e5c-eb0 eb2-eb3 eba "
    "ebd-ec7 ece-f00 f20-f33 f40-f70 f88-f8c f98 fbd fcd fdb-102a 103f-1049 1050-1055 105a-105d 1061 "
    "1065-1066 106e-1070 1075-1081 108e 1090-1099 10a0-10fa 10fc-135c 1369-138f 139a-13ff 1401-166c "
    "166f-167f 1681-169a 169d-16ea 16ee-1711 1715-1731 1737-1751 1754-1771 1774-17b3 17d7 17dc "
    "17de-17ff 180f-18a8 18aa-191f 192c-192f 193c-193f 1941-1943 1946-19af 19c1-19c7 19ca-19dd "
    "1a00-1a16 1a1c-1a1d 1a20-1a54 1a5f 1a7d-1a7e 1a80-1a9f 1aa7 1aae-1aff 1b05-1b33 1b45-1b59 "
    "1b7d-1b7f 1b83-1ba0 1bae-1be5 1bf4-1bfb 1c00-1c23 1c38-1c3a 1c40-1c7d 1c80-1cbf 1cc8-1ccf "
    "1ce9-1cec 1cee-1cf1 1cf5-1dbf 1de7-1dfb 1e00-1fbc 1fbe 1fc2-1fcc 1fd0-1fdc 1fe0-1fec 1ff0-1ffc "
    "1fff 2065-2069 2070-2079 207f-2089 208f-209f 20ba-20cf 20f1-20ff 2102 2107 210a-2113 2115 "
    "2119-211d 2124 2126 2128 212a-212d 212f-2139 213c-213f 2145-2149 214e 2150-218f 23f4-23ff "
    "2427-243f 244b-249b 24ea-24ff 2700 2776-2793 2b4d-2b4f 2b5a-2ce4 2ceb-2cee 2cf2-2cf8 2cfd "
    "2d00-2d6f 2d71-2d7e 2d80-2ddf 2e2f 2e3c-2e7f 2e9a 2ef4-2eff 2fd6-2fef 2ffc-2fff 3005-3007 "
    "3021-3029 3031-3035 3038-303c 3040-3098 309d-309f 30a1-30fa 30fc-318f 3192-3195 31a0-31bf "
    "31e4-31ff 321f-3229 3248-324f 3251-325f 3280-3289 32b1-32bf 32ff 3400-4dbf 4e00-a48f a4c7-a4fd "
    "a500-a60c a610-a66e a67f-a69e a6a0-a6ef a6f8-a6ff a717-a71f a722-a788 a78b-a801 a803-a805 "
    "a807-a80a a80c-a822 a82c-a835 a83a-a873 a878-a87f a882-a8b3 a8c5-a8cd a8d0-a8df a8f2-a8f7 "
    "a8fb-a925 a930-a946 a954-a95e a960-a97f a984-a9b2 a9ce-a9dd a9e0-aa28 aa37-aa42 aa44-aa4b "
    "aa4e-aa5b aa60-aa76 aa7a aa7c-aaaf aab1 aab5-aab6 aab9-aabd aac0 aac2-aadd aae0-aaea aaf2-aaf4 "
    "aaf7-abe2 abee-d7ff e000-fb1d fb1f-fb28 fb2a-fbb1 fbc2-fd3d fd40-fdfb fdfe-fdff fe1a-fe1f "
    "fe27-fe2f fe53 fe67 fe6c-fefe ff00 ff10-ff19 ff21-ff3a ff41-ff5a ff66-ffdf ffe7 ffef-fff8 "
    "10000-100ff 10103-10136 10140-10178 1018a-1018f 1019c-101cf 101fe-1039e 103a0-103cf 103d1-10856 "
    "10858-1091e 10920-1093e 10940-10a00 10a04 10a07-10a0b 10a10-10a37 10a3b-10a3e 10a40-10a4f "
    "10a59-10a7e 10a80-10b38 10b40-10fff 11003-11037 1104e-1107f 11083-110af 110c2-110ff 11103-11126 "
    "11135-1113f 11144-1117f 11183-111b2 111c1-111c4 111c9-116aa 116b8-1246f 12474-16f50 16f7f-16f8e "
    "16f93-1cfff 1d0f6-1d0ff 1d127-1d128 1d1de-1d1ff 1d246-1d2ff 1d357-1d6c0 1d6c2-1d6da 1d6dc-1d6fa "
    "1d6fc-1d714 1d716-1d734 1d736-1d74e 1d750-1d76e 1d770-1d788 1d78a-1d7a8 1d7aa-1d7c2 1d7c4-1eeef "
    "1eef2-1efff 1f02c-1f02f 1f094-1f09f 1f0af-1f0b0 1f0bf-1f0c0 1f0d0 1f0e0-1f10f 1f12f 1f16c-1f16f "
    "1f19b-1f1e5 1f203-1f20f 1f23b-1f23f 1f249-1f24f 1f252-1f2ff 1f321-1f32f 1f336 1f37d-1f37f "
    "1f394-1f39f 1f3c5 1f3cb-1f3df 1f3f1-1f3ff 1f43f 1f441 1f4f8 1f4fd-1f4ff 1f53e-1f53f 1f544-1f54f "
    "1f568-1f5fa 1f641-1f644 1f650-1f67f 1f6c6-1f6ff 1f774-2ffff"
)
# lower()'d character -> unicode61's fold of it, where they differ (empty: dropped).
_FOLD = (
    "b5:3bc e0:61 e1:61 e2:61 e3:61 e4:61 e5:61 e7:63 e8:65 e9:65 ea:65 eb:65 ec:69 ed:69 ee:69 ef:69 "
    "f1:6e f2:6f f3:6f f4:6f f5:6f f6:6f f9:75 fa:75 fb:75 fc:75 fd:79 ff:79 101:61 103:61 105:61 "
    "107:63 109:63 10b:63 10d:63 10f:64 113:65 115:65 117:65 119:65 11b:65 11d:67 11f:67 121:67 "
    "123:67 125:68 129:69 12b:69 12d:69 12f:69 135:6a 137:6b 13a:6c 13c:6c 13e:6c 144:6e 146:6e "
    "148:6e 14d:6f 14f:6f 151:6f 155:72 157:72 159:72 15b:73 15d:73 15f:73 161:73 163:74 165:74 "
    "169:75 16b:75 16d:75 16f:75 171:75 173:75 175:77 177:79 17a:7a 17c:7a 17e:7a 17f:73 1a1:6f "
    "1b0:75 1ce:61 1d0:69 1d2:6f 1d4:75 1d6:75 1d8:75 1da:75 1dc:75 1df:61 1e7:67 1e9:6b 1eb:6f "
    "1ed:6f 1f0:6a 1f5:67 1f9:6e 1fb:61 201:61 203:61 205:65 207:65 209:69 20b:69 20d:6f 20f:6f "
    "211:72 213:72 215:75 217:75 219:73 21b:74 21f:68 227:61 229:65 22b:6f 22d:6f 22f:6f 231:6f "
    "233:79 300: 301: 302: 303: 304: 306: 307: 308: 309: 30a: 30b: 30c: 30f: 311: 31b: 323: 324: 325: "
    "326: 327: 328: 32d: 32e: 330: 331: 3c2:3c3 3d0:3b2 3d1:3b8 3d5:3c6 3d6:3c0 3f0:3ba 3f1:3c1 "
    "3f5:3b5 1e01:61 1e03:62 1e05:62 1e07:62 1e09:63 1e0b:64 1e0d:64 1e0f:64 1e11:64 1e13:64 1e15:65 "
    "1e17:65 1e19:65 1e1b:65 1e1d:65 1e1f:66 1e21:67 1e23:68 1e25:68 1e27:68 1e29:68 1e2b:68 1e2d:69 "
    "1e2f:69 1e31:6b 1e33:6b 1e35:6b 1e37:6c 1e39:6c 1e3b:6c 1e3d:6c 1e3f:6d 1e41:6d 1e43:6d 1e45:6e "
    "1e47:6e 1e49:6e 1e4b:6e 1e4d:6f 1e4f:6f 1e51:6f 1e53:6f 1e55:70 1e57:70 1e59:72 1e5b:72 1e5d:72 "
    "1e5f:72 1e61:73 1e63:73 1e65:73 1e67:73 1e69:73 1e6b:74 1e6d:74 1e6f:74 1e71:74 1e73:75 1e75:75 "
    "1e77:75 1e79:75 1e7b:75 1e7d:76 1e7f:76 1e81:77 1e83:77 1e85:77 1e87:77 1e89:77 1e8b:78 1e8d:78 "
    "1e8f:79 1e91:7a 1e93:7a 1e95:7a 1e96:68 1e97:74 1e98:77 1e99:79 1e9b:73 1ea1:61 1ea3:61 1ea5:61 "
    "1ea7:61 1ea9:61 1eab:61 1ead:61 1eaf:61 1eb1:61 1eb3:61 1eb5:61 1eb7:61 1eb9:65 1ebb:65 1ebd:65 "
    "1ebf:65 1ec1:65 1ec3:65 1ec5:65 1ec7:65 1ec9:69 1ecb:69 1ecd:6f 1ecf:6f 1ed1:6f 1ed3:6f 1ed5:6f "
    "1ed7:6f 1ed9:6f 1edb:6f 1edd:6f 1edf:6f 1ee1:6f 1ee3:6f 1ee5:75 1ee7:75 1ee9:75 1eeb:75 1eed:75 "
    "1eef:75 1ef1:75 1ef3:79 1ef5:79 1ef7:79 1ef9:79 1fbe:3b9"
)


def _escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _token_class() -> str:
    parts = []
    for item in _TOKEN_RANGES.split():
        lo, _, hi = item.partition("-")
        parts.append(_escape(int(lo, 16)) + (f"-{_escape(int(hi, 16))}" if hi else ""))
    return "[^" + "".join(parts) + "]+"


def _fold_blocks() -> list[tuple[str, str, str]]:
    """``_FOLD`` as (regex class, from, to) per block: Latin-1, Latin Extended-A, the rest.

    translate() compares every character of its input with every character of ``from``,
    so a name pays only for the blocks its letters come from ("Müller": 28 characters,
    not 282). The characters to drop (combining marks) are in the last block and last in
    it: translate() drops the characters of ``from`` past the end of ``to``.
    """
    pairs = [(int(a, 16), int(b, 16) if b else None) for a, b in (item.split(":") for item in _FOLD.split())]
    blocks = []
    for lo, hi in ((0x80, 0xFF), (0x100, 0x17F), (0x180, 0x10FFFF)):
        mapped = [(a, b) for a, b in pairs if lo <= a <= hi and b is not None]
        dropped = [a for a, b in pairs if lo <= a <= hi and b is None]
        if dropped and hi != 0x10FFFF:
            raise AssertionError("unicode61 drops only combining marks (U+0300 and up)")
        source = [a for a, _ in mapped] + dropped
        blocks.append(
            (
                "[" + "".join(_escape(a) for a in source) + "]",
                "".join(chr(a) for a in source),
                "".join(chr(b) for _, b in mapped),
            )
        )
    return blocks


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fold_sql(text: str) -> str:
    lowered = f"lower({text})"
    present = [f"CASE WHEN {lowered} ~ '{cls}' THEN {{}} ELSE '' END" for cls, _, _ in _FOLD_BLOCKS]
    source = " || ".join(p.format(_literal(f)) for p, (_, f, _) in zip(present, _FOLD_BLOCKS, strict=True))
    target = " || ".join(p.format(_literal(t)) for p, (_, _, t) in zip(present, _FOLD_BLOCKS, strict=True))
    return (
        f"regexp_replace(CASE WHEN octet_length({text}) = length({text}) THEN {lowered}\n"
        f"    ELSE translate({lowered},\n      {source},\n      {target}) END,\n"
        f"    '{_token_class()}', ' ', 'g')"
    )


_FOLD_BLOCKS = _fold_blocks()

# One field folded to its words, separated by spaces (some at either end). Not STRICT, so
# PostgreSQL inlines it: ASCII text (most of it) costs lower() and one regexp_replace().
SEARCH_FUNCTIONS = f"""
CREATE FUNCTION crm_search_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT {_fold_sql("t")}
$$;

CREATE FUNCTION crm_phone_digits(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT translate(coalesce(p, ''), ' -().+/', '')
    || ' ' || right(translate(coalesce(p, ''), ' -().+/', ''), 10)
    || ' ' || right(translate(coalesce(p, ''), ' -().+/', ''), 7)
$$;

CREATE FUNCTION crm_contacts_search(
  firstname text, lastname text, email text, company text, phone text, mobilephone text
) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_to_tsvector(array_remove(string_to_array(
    coalesce(crm_search_fold(firstname), '') || ' ' || coalesce(crm_search_fold(lastname), '')
    || ' ' || coalesce(crm_search_fold(email), '') || ' ' || coalesce(crm_search_fold(company), '')
    || ' ' || coalesce(crm_search_fold(phone), '') || ' ' || coalesce(crm_search_fold(mobilephone), '')
    || ' ' || crm_search_fold(crm_phone_digits(phone) || ' ' || crm_phone_digits(mobilephone)),
    ' '), ''))
$$;

-- The words of the search box (as the store splits them) -> every word a prefix, ANDed.
-- A word with nothing to search for (only "_") matches nothing, as in FTS5.
CREATE FUNCTION crm_contacts_query(words text[]) RETURNS tsquery
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  word text;
  parts text[];
  terms text[] := '{{}}';
BEGIN
  FOREACH word IN ARRAY words LOOP
    parts := array_remove(string_to_array(crm_search_fold(word), ' '), '');
    IF coalesce(cardinality(parts), 0) = 0 THEN
      RETURN NULL;
    END IF;
    FOR i IN 1 .. cardinality(parts) LOOP
      terms := terms || (quote_literal(parts[i]) || CASE WHEN i = cardinality(parts) THEN ':*' ELSE '' END);
    END LOOP;
  END LOOP;
  RETURN array_to_string(terms, ' & ')::tsquery;
END
$$;
"""

# The expression the GIN index covers; a query must repeat it exactly to use the index.
CONTACTS_SEARCH_EXPRESSION = "crm_contacts_search(firstname, lastname, email, company, phone, mobilephone)"
CONTACTS_SEARCH_MATCH = f"{CONTACTS_SEARCH_EXPRESSION} @@ crm_contacts_query(?::text[])"

# A search word unicode61 splits (``ann_lee``) is an FTS5 phrase: its parts adjacent, in
# one field, the last a prefix. The index (no positions) finds contacts holding the parts;
# this keeps those where one field's folded words hold them in a row. One ``?`` per field,
# each the search word.
_PHRASE_FIELDS = (
    "firstname",
    "lastname",
    "email",
    "company",
    "phone",
    "mobilephone",
    "crm_phone_digits(phone) || ' ' || crm_phone_digits(mobilephone)",
)
CONTACTS_PHRASE_MATCH = (
    "("
    + " OR ".join(
        f"(' ' || crm_search_fold({field}) || ' ') LIKE ('% ' || btrim(crm_search_fold(?)) || '%')"
        for field in _PHRASE_FIELDS
    )
    + ")"
)
CONTACTS_PHRASE_PARAMS = len(_PHRASE_FIELDS)


def _range_starts() -> tuple[list[int], list[int]]:
    starts, ends = [], []
    for item in _TOKEN_RANGES.split():
        lo, _, hi = item.partition("-")
        starts.append(int(lo, 16))
        ends.append(int(hi or lo, 16))
    return starts, ends


_STARTS, _ENDS = _range_starts()


def splits_into_words(word: str) -> bool:
    """Whether unicode61 reads ``word`` as several words (it holds a non-token character)."""
    for char in word:
        at = bisect.bisect_right(_STARTS, ord(char)) - 1
        if at < 0 or ord(char) > _ENDS[at]:
            return True
    return False


def _from_sqlite(ddl: str) -> str:
    ddl = re.sub(r"\bid INTEGER PRIMARY KEY,", "id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,", ddl)
    ddl = re.sub(r"\bINTEGER\b", "bigint", ddl)
    ddl = re.sub(r"\bREAL\b", "double precision", ddl)
    return re.sub(r"\bTEXT\b", "text", ddl)


# The default page order is most recently updated first, empty values last: PostgreSQL
# sorts NULLs first in DESC order unless told, and an index serves only the order it
# was built in, so the updated_at indexes are built DESC NULLS LAST (SQLite's NULLs sort
# last in DESC by themselves).
_UPDATED_DESC = re.compile(r"^(CREATE INDEX \w+_updated_at ON \w+)\(updated_at\);$", re.M)

PG_V1 = _UPDATED_DESC.sub(r"\1(updated_at DESC NULLS LAST, id DESC);", _from_sqlite(V1))

PG_V2_CONTACTS_SEARCH = (
    SEARCH_FUNCTIONS
    + f"""
CREATE INDEX contacts_search ON contacts USING gin ({CONTACTS_SEARCH_EXPRESSION});
CREATE INDEX contacts_archived_updated ON contacts(archived, updated_at DESC NULLS LAST, id DESC);
"""
)

# SQLite's step 3 only narrowed when its search triggers fire; an index needs nothing.
PG_V3_NOTHING = ""

PG_V4_EMAIL_LOOKUP = "CREATE INDEX contacts_email_lower ON contacts(lower(email));"

# Tickets, engagements, their bodies and timeline links: SQLite's step translated as
# version 1 is (the tickets_updated_at index DESC NULLS LAST like the other record tables).
PG_V5_INTERACTIONS = _UPDATED_DESC.sub(
    r"\1(updated_at DESC NULLS LAST, id DESC);", _from_sqlite(V5_INTERACTIONS)
)

# Interaction text search (SQLite's step 6 is an FTS5 index): each engagement's subject,
# summary and full text folded to words by ``crm_search_fold`` (as contacts are), kept in
# ``interactions_search`` with a GIN index. The text is in two tables (a body is stored
# once), so an index over an expression of the interactions row cannot hold it; triggers
# on ``interactions`` write the words when a row arrives or its subject, summary or body
# changes, and remove them with the row. A word longer than a tsvector lexeme allows
# (2,046 bytes: a pasted blob, not something anyone types) is left out.
PG_V6_INTERACTIONS_SEARCH = """
CREATE FUNCTION crm_interaction_words(subject text, summary text, body text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_to_tsvector(coalesce(array(
    SELECT w FROM unnest(string_to_array(
      coalesce(crm_search_fold(subject), '') || ' ' || coalesce(crm_search_fold(summary), '')
      || ' ' || coalesce(crm_search_fold(body), ''), ' ')) AS w
    WHERE w <> '' AND octet_length(w) < 2047), '{}'))
$$;

CREATE TABLE interactions_search (
  object_type text NOT NULL,
  id text NOT NULL,
  words tsvector NOT NULL,
  PRIMARY KEY (object_type, id)
);
CREATE INDEX interactions_search_words ON interactions_search USING gin (words);

CREATE FUNCTION crm_interactions_search_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM interactions_search WHERE object_type = OLD.object_type AND id = OLD.id;
    RETURN OLD;
  END IF;
  INSERT INTO interactions_search (object_type, id, words)
  VALUES (NEW.object_type, NEW.id, crm_interaction_words(NEW.subject, NEW.summary,
    (SELECT b.body FROM interaction_bodies b WHERE b.hash = NEW.body_hash)))
  ON CONFLICT (object_type, id) DO UPDATE SET words = excluded.words;
  RETURN NEW;
END
$$;

CREATE TRIGGER interactions_search_insert AFTER INSERT ON interactions
FOR EACH ROW EXECUTE FUNCTION crm_interactions_search_sync();
CREATE TRIGGER interactions_search_update AFTER UPDATE OF subject, summary, body_hash ON interactions
FOR EACH ROW WHEN (OLD.subject IS DISTINCT FROM NEW.subject OR OLD.summary IS DISTINCT FROM NEW.summary
  OR OLD.body_hash IS DISTINCT FROM NEW.body_hash)
EXECUTE FUNCTION crm_interactions_search_sync();
CREATE TRIGGER interactions_search_delete AFTER DELETE ON interactions
FOR EACH ROW EXECUTE FUNCTION crm_interactions_search_sync();

INSERT INTO interactions_search (object_type, id, words)
SELECT i.object_type, i.id, crm_interaction_words(i.subject, i.summary, b.body)
FROM interactions i LEFT JOIN interaction_bodies b ON b.hash = i.body_hash;

CREATE INDEX interactions_occurred ON interactions(occurred_at, object_type, id);
"""

# The words of a search box as the interactions index is searched on both backends: the
# ``\w`` runs of the text, split at "_" too (unicode61 splits there), each a prefix, ANDed.
INTERACTION_SEARCH_MATCH = "words @@ crm_contacts_query(?::text[])"
# The registry of connections, and the adoption of an existing portal (as SQLite's step 7).
PG_V7_CONNECTIONS = _from_sqlite(V7_CONNECTIONS_TABLE) + adopt_existing_portal(
    "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
)

# The links of one person across connections (as SQLite's step 8).
PG_V8_LINKS = _from_sqlite(V8_LINKS)

PG_MIGRATIONS: list[str] = [
    PG_V1,
    PG_V2_CONTACTS_SEARCH,
    PG_V3_NOTHING,
    PG_V4_EMAIL_LOOKUP,
    PG_V5_INTERACTIONS,
    PG_V6_INTERACTIONS_SEARCH,
    PG_V7_CONNECTIONS,
    PG_V8_LINKS,
]

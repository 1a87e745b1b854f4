-- A community's web page (issue 14): made only when one of its admins asks (/webpage on),
-- at an unguessable address; NULL: none. Taking it down clears it, so the address dies.
ALTER TABLE communities ADD COLUMN web_page text;
CREATE UNIQUE INDEX communities_web_page ON communities (web_page) WHERE web_page IS NOT NULL;

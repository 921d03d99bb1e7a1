package mysql

import "testing"

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		sql, kind string
		multi     bool // the connection negotiated CLIENT_MULTI_STATEMENTS
	}{
		{"SELECT 1", StmtSelect, false},
		{"select * from t", StmtSelect, false},
		{"  \t\r\n\f\vSeLeCt 1", StmtSelect, false},
		{"/* c */ SELECT 1", StmtSelect, false},
		{"/* a */ /* b **/ -- c\n# d\nSELECT 1", StmtSelect, false},
		{"--\tx\nSELECT 1", StmtSelect, false},
		{"--x\nSELECT 1", StmtOther, false}, // "--x" is not a comment: minus minus x
		{"((SELECT 1)) UNION (SELECT 2)", StmtSelect, false},
		{"TABLE t", StmtSelect, false},
		{"VALUES (1), (2)", StmtSelect, false},
		{"WITH c AS (SELECT 1) SELECT * FROM c", StmtSelect, false},
		{"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 3) SELECT n FROM c", StmtSelect, false},
		{"with `update` as (select 1) delete t from t join `update`", StmtDelete, false},
		{"WITH c AS (SELECT ')' AS p) UPDATE t, c SET t.a = c.p", StmtUpdate, false},
		{"WITH c AS (SELECT 1", StmtOther, false},
		{"INSERT INTO t VALUES (1)", StmtInsert, false},
		{"insert_x", StmtOther, false},
		{"UPDATE t SET a = 1", StmtUpdate, false},
		{"DELETE FROM t", StmtDelete, false},
		{"REPLACE INTO t VALUES (1)", StmtReplace, false},
		{"CREATE TABLE t (a INT)", StmtDDL, false},
		{"alter table t add b int", StmtDDL, false},
		{"DROP TABLE t", StmtDDL, false},
		{"TRUNCATE t", StmtDDL, false},
		{"RENAME TABLE a TO b", StmtDDL, false},
		{"BEGIN", StmtTransaction, false},
		{"BEGIN WORK", StmtTransaction, false},
		{"BEGIN NOT ATOMIC SELECT 1; END", StmtOther, false},
		{"START TRANSACTION READ ONLY", StmtTransaction, false},
		{"START SLAVE", StmtOther, false},
		{"COMMIT", StmtTransaction, false},
		{"ROLLBACK TO SAVEPOINT s", StmtTransaction, false},
		{"SAVEPOINT s", StmtTransaction, false},
		{"RELEASE SAVEPOINT s", StmtTransaction, false},
		{"XA START 'x'", StmtTransaction, false},
		{"SET autocommit = 0", StmtSet, false},
		{"/*!40101 SET NAMES utf8mb4 */", StmtSet, false},
		{"/*M!100100 SET x = 1 */", StmtSet, false},
		{"/*!*/ SHOW TABLES", StmtShow, false},
		{"SHOW DATABASES", StmtShow, false},
		{"USE shop", StmtUse, false},
		{"CALL p(1)", StmtCall, false},
		{"DO 1", StmtOther, false},
		{"LOAD DATA LOCAL INFILE 'f' INTO TABLE t", StmtOther, false},
		{"EXPLAIN SELECT 1", StmtOther, false},
		{"", StmtOther, false},
		{"/* unterminated", StmtOther, false},
		{"--", StmtOther, false},
		{"#", StmtOther, false},
		{"é SELECT", StmtOther, false},
		{"SELECTIVELY", StmtOther, false},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZ", StmtOther, false},
		// Multi-statement queries.
		{"SELECT 1; DELETE FROM t", StmtMulti, true},
		{"SELECT 1; DELETE FROM t", StmtSelect, false},
		{"SELECT 1;", StmtSelect, true},
		{"SELECT 1 ; ;; -- done\n /* really */ ", StmtSelect, true},
		{"SELECT ';' FROM t", StmtSelect, true},
		{`SELECT "a\";b" FROM t`, StmtSelect, true},
		{"SELECT `a;b` FROM t", StmtSelect, true},
		{"SELECT 1 /* ; */ -- ;\n # ;", StmtSelect, true},
		{"SELECT 'it''s'; SELECT 2", StmtMulti, true},
		{"CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END", StmtDDL, true},
		{"/*!40101 SET x = 1 */; DROP TABLE t", StmtMulti, true},
	} {
		if got := classify([]byte(tc.sql), tc.multi); got != tc.kind {
			t.Errorf("%q (multi %v): %s, want %s", tc.sql, tc.multi, got, tc.kind)
		}
	}
}

func TestUseDatabase(t *testing.T) {
	for _, tc := range []struct {
		sql, db string
		ok      bool
	}{
		{"USE shop", "shop", true},
		{"use shop;", "shop", true},
		{" /* x */ USE  shop ; -- bye", "shop", true},
		{"USE `my db`", "my db", true},
		{"USE `a``b`", "a`b", true},
		{"USE `open", "", false},
		{"USE", "", false},
		{"USE a b", "", false},
		{"USE a; SELECT 1", "", false},
		{"SELECT 1", "", false},
	} {
		if db, ok := useDatabase([]byte(tc.sql)); db != tc.db || ok != tc.ok {
			t.Errorf("%q: %q %v, want %q %v", tc.sql, db, ok, tc.db, tc.ok)
		}
	}
}

func TestClassifyAllocs(t *testing.T) {
	q := []byte("/* hint */ WITH c AS (SELECT 1) SELECT * FROM c WHERE a = 'x;y'; ")
	if a := testing.AllocsPerRun(100, func() { classify(q, true) }); a != 0 {
		t.Errorf("%v allocations", a)
	}
}

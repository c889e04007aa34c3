-- The profile-field feed (tool_uploaduser, keyed on username): one row per
-- existing Moodle account of an active student (an account whose idnumber
-- is the student code; both accounts of a duplicated student get one). The
-- incumbent's profile fields: student number, programme of
-- study and code and UG/PG and year level from the student's first
-- assignment (int.student), approved modules (module codes of
-- registrations whose status is approved, CON and APP) and pre-approval
-- modules (the others above level 0, NEW), each a sorted comma list, of the
-- occurrences of the current year: from min_mod_occ_year on and, when the
-- setting academic_year is set, of that year.
--
-- After an observed merge (mart.exp_idnumber_carry) the account's idnumber
-- is the one it is to carry: the kept account gets the student's row with
-- carry 'set', and the merged-away account a row with carry 'clear', an
-- empty idnumber and no values (the feed keeps its current ones), so that
-- one file moves the code. idnumber is what the account is to carry.
-- description: profile fields per Moodle account of an active student.
-- depends: stg.moodle_user, int.student, int.setting, stg.sits_student_enrl, stg.sits_module_struc, mart.exp_idnumber_carry
-- checks: unique(instance, username), unique(instance, user_id), not_null(instance, username, user_id, idnumber)
-- checks: accepted_values(carry, 'set', 'clear')
-- checks: accepted_values(ug_pg, 'UG', 'PG')
WITH registration AS (
    SELECT r.student_code, o.mod_code, bool_or(rl.approved) AS approved
    FROM stg.sits_student_enrl r
    JOIN stg.sits_module_struc o ON o.mod_occ_bdo_id = r.mod_occ_bdo_id
    JOIN ref.sits_registration_status rl ON rl.code = r.reg_status
    CROSS JOIN int.setting st
    WHERE rl.level > 0 AND o.mod_code IS NOT NULL
      AND (st.min_mod_occ_year = 0 OR o.ayr_start >= st.min_mod_occ_year)
      AND (st.academic_year = 0 OR o.ayr_start = st.academic_year)
    GROUP BY r.student_code, o.mod_code
),
modules AS (
    SELECT student_code,
        coalesce(string_agg(mod_code, ',' ORDER BY mod_code) FILTER (WHERE approved), '') AS approved_modules,
        coalesce(string_agg(mod_code, ',' ORDER BY mod_code) FILTER (WHERE NOT approved), '') AS preapproval_modules
    FROM registration
    GROUP BY student_code
),
account AS (
    SELECT u.instance, u.username, u.user_id,
        CASE c.action WHEN 'set' THEN c.idnumber WHEN 'clear' THEN NULL ELSE u.idnumber END AS idnumber,
        c.action AS carry
    FROM stg.moodle_user u
    LEFT JOIN mart.exp_idnumber_carry c ON c.instance = u.instance AND c.user_id = u.user_id AND c.action IN ('set', 'clear')
    WHERE u.idnumber IS NOT NULL OR c.action IS NOT NULL
)
SELECT
    u.instance, u.username,
    s.student_code AS student_number,
    s.prog_name AS programme_name,
    s.prog_code AS programme_code,
    CASE s.post_undergrad WHEN 'U' THEN 'UG' WHEN 'P' THEN 'PG' END AS ug_pg,
    coalesce(m.approved_modules, '') AS approved_modules,
    coalesce(m.preapproval_modules, '') AS preapproval_modules,
    coalesce(s.year_of_study::text, s.course_year) AS year_level,
    u.user_id,
    s.student_code AS idnumber,
    u.carry
FROM account u
JOIN int.student s ON s.student_code = u.idnumber AND s.active
LEFT JOIN modules m ON m.student_code = s.student_code
UNION ALL
SELECT u.instance, u.username, NULL, NULL, NULL, NULL, NULL, NULL, NULL, u.user_id, '', u.carry
FROM account u
WHERE u.carry = 'clear'

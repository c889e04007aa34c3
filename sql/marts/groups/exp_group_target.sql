-- The groups group sync should make (docs/contracts.md §2): for every
-- active mapping with group_sync whose course exists exactly once on the
-- site, the CMIS teaching groups of its occurrences (int.mapping_occurrence,
-- so the year filters apply), each a group and a grouping of the same
-- idnumber and name, as the incumbent made them. One row per desired member
-- (CMIS members, SITS form of the code, whose code is the idnumber of
-- exactly one account), or one row with userid NULL for a group without
-- such a member. Members are not filtered by enrolment: group sync reports
-- those not enrolled yet. cmis_members counts the group's CMIS member
-- rows, matched or not (0: an empty group).
--
-- With the setting group_sync_tutors, the group's CMIS tutors (by UPI, an
-- account of their own on the site) are members too; member_role says which
-- (student, or the role ref.mim_role_source gives group_tutors: teacher).
--
-- idnumber: the site's group prefix (moodle[].group_prefix) and
-- GROUP_BDO_ID. Name: GROUP_CODE (the incumbent's); when two groups of the
-- course share it (several mapped modules), "<MOD_CODE> <GROUP_CODE>"; when
-- that is still shared (several occurrences of one module),
-- "<GROUP_CODE> <INST_CODE>" (INST_CODE is MAV-PSL).
-- description: desired groups, groupings and members of group-sync courses per site.
-- depends: int.mapping_occurrence, int.moodle_course_idnumber, int.moodle_account, int.moodle_account_upi, int.site, int.setting, stg.cmis_module_group, stg.cmis_group_member, stg.cmis_group_tutor
-- checks: unique(instance, courseid, group_idnumber, userid), not_null(instance, courseid, course_idnumber, group_idnumber, group_name)
-- indexes: (instance, courseid)
WITH sync_occurrence AS (
    SELECT DISTINCT mo.instance, mo.course_idnumber, c.course_id, mo.mod_occ_bdo_id
    FROM int.mapping_occurrence mo
    JOIN int.moodle_course_idnumber c ON c.instance = mo.instance AND c.idnumber = mo.course_idnumber AND c.courses = 1
    WHERE mo.group_sync
),
grp AS (
    SELECT DISTINCT so.instance, so.course_id, so.course_idnumber, g.group_bdo_id,
        coalesce(g.group_code, g.group_name, g.group_id, g.group_bdo_id) AS code,
        g.mod_code, coalesce(g.inst_code, g.group_id, g.group_bdo_id) AS inst_code
    FROM sync_occurrence so
    JOIN stg.cmis_module_group g ON g.mod_occ_bdo_id = so.mod_occ_bdo_id
),
named AS (
    SELECT grp.*,
        count(*) OVER (PARTITION BY instance, course_id, code) AS same_code,
        count(*) OVER (PARTITION BY instance, course_id, mod_code, code) AS same_module_code
    FROM grp
),
desired AS (
    SELECT n.instance, n.course_id, n.course_idnumber, n.group_bdo_id,
        s.group_prefix || n.group_bdo_id AS group_idnumber,
        CASE WHEN n.same_code = 1 THEN n.code
             WHEN n.same_module_code = 1 AND n.mod_code IS NOT NULL THEN n.mod_code || ' ' || n.code
             ELSE n.code || ' ' || n.inst_code END AS group_name
    FROM named n
    JOIN int.site s ON s.instance = n.instance
),
member_any AS (
    SELECT g.instance, g.group_bdo_id, a.user_id, a.idnumber, 'student' AS member_role
    FROM (SELECT DISTINCT instance, group_bdo_id FROM desired) g
    JOIN stg.cmis_group_member m ON m.group_bdo_id = g.group_bdo_id
    JOIN int.moodle_account a ON a.instance = g.instance AND a.idnumber = m.sits_student_code AND a.accounts = 1
    UNION ALL
    SELECT g.instance, g.group_bdo_id, u.user_id, u.user_idnumber,
        coalesce((SELECT min(rs.role) FROM ref.mim_role_source rs WHERE rs.source = 'group_tutors'), 'teacher')
    FROM (SELECT DISTINCT instance, group_bdo_id FROM desired) g
    CROSS JOIN int.setting s
    JOIN stg.cmis_group_tutor gt ON gt.group_bdo_id = g.group_bdo_id
    JOIN int.moodle_account_upi u ON u.instance = g.instance AND u.upi = upper(gt.staff_upi) AND u.accounts = 1
    WHERE s.group_sync_tutors
),
member AS (
    -- one row per person and group; someone both a member and a tutor is a student here
    SELECT DISTINCT ON (instance, group_bdo_id, user_id) instance, group_bdo_id, user_id, idnumber, member_role
    FROM member_any
    ORDER BY instance, group_bdo_id, user_id, member_role <> 'student', member_role
)
SELECT
    d.instance, d.course_id AS courseid, d.course_idnumber,
    d.group_idnumber, d.group_name,
    d.group_idnumber AS grouping_idnumber, d.group_name AS grouping_name,
    mb.user_id AS userid, mb.idnumber AS user_idnumber,
    d.group_bdo_id, mb.member_role,
    coalesce(cm.members, 0) AS cmis_members
FROM desired d
LEFT JOIN member mb ON mb.group_bdo_id = d.group_bdo_id AND mb.instance = d.instance
LEFT JOIN (SELECT group_bdo_id, count(*)::int AS members FROM stg.cmis_group_member GROUP BY group_bdo_id) cm
       ON cm.group_bdo_id = d.group_bdo_id

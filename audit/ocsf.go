package audit

import "strconv"

// OCSF returns the record as an OCSF Process Activity event (class 1007),
// with the agent in the ai_operation profile's ai_agent object and
// everything OCSF has no place for (intent, credentials, decision, sandbox,
// output digests, log coordinates) under unmapped.agentexec.
func OCSF(it Item) map[string]any {
	r := it.Record
	activity, activityName := 1, "Launch"
	status, statusName := 1, "Success"
	switch r.Kind {
	case KindEnd:
		activity, activityName = 2, "Terminate"
		if r.Result != nil && (r.Result.ExitCode != 0 || r.Result.Signal != "" || r.Result.Error != "") {
			status, statusName = 2, "Failure"
		}
	case KindDenied:
		status, statusName = 2, "Failure"
	case KindStart:
	default:
		activity, activityName = 99, "Other"
	}
	ms := func(t interface{ UnixMilli() int64 }) int64 { return t.UnixMilli() }
	when := r.Time.Start
	if !r.Time.End.IsZero() {
		when = r.Time.End
	}
	user := map[string]any{"name": r.Principal.User.Name, "uid": strconv.FormatUint(uint64(r.Principal.User.UID), 10)}
	procUID := r.ID
	if r.StartID != "" {
		procUID = r.StartID
	}
	process := map[string]any{"uid": procUID, "user": user}
	if line := commandLine(r); line != "" {
		process["cmd_line"] = line
	}
	if name := programName(r); name != "" {
		process["name"] = name
	}
	if r.Cwd != "" {
		process["working_directory"] = r.Cwd
	}
	if !r.Time.Start.IsZero() && r.Kind != KindEnd {
		process["created_time"] = ms(r.Time.Start)
	}
	if !r.Time.End.IsZero() {
		process["terminated_time"] = ms(r.Time.End)
	}
	actor := map[string]any{"user": user}
	if r.Principal.AuditSession != nil {
		actor["session"] = map[string]any{"uid": strconv.FormatUint(uint64(*r.Principal.AuditSession), 10)}
	}
	ev := map[string]any{
		"class_uid": 1007, "class_name": "Process Activity",
		"category_uid": 1, "category_name": "System Activity",
		"activity_id": activity, "activity_name": activityName,
		"type_uid": 1007*100 + activity, "type_name": "Process Activity: " + activityName,
		"time":        ms(when),
		"severity_id": 1, "severity": "Informational",
		"status_id": status, "status": statusName,
		"metadata": map[string]any{
			"version":  "1.4.0",
			"uid":      r.ID,
			"log_name": r.LogOrigin,
			"product":  map[string]any{"name": "agentexec", "vendor_name": "agentexec"},
			"profiles": []string{"ai_operation"},
		},
		"actor":   actor,
		"device":  map[string]any{"hostname": r.Host.Hostname, "uid": r.Host.MachineID, "boot_uid": r.Host.BootID, "os": map[string]any{"name": r.Host.OS}},
		"process": process,
	}
	if r.Result != nil {
		ev["exit_code"] = r.Result.ExitCode
	}
	if r.Agent != (Agent{}) {
		ev["ai_agent"] = map[string]any{"uid": r.Agent.Name, "name": r.Agent.Name, "instance_uid": r.Agent.Session}
	}
	if msg := commandLine(r); msg != "" {
		ev["message"] = msg
	}
	ev["unmapped"] = map[string]any{"agentexec": map[string]any{
		"kind": r.Kind, "seq": r.Seq, "log_origin": r.LogOrigin, "leaf_hash": it.Entry.LeafHash, "prev": r.Prev,
		"intent": r.Intent, "decision": r.Decision, "credentials": r.Credentials, "sandbox": r.Sandbox,
		"network": r.Network, "io": r.IO, "result": r.Result, "start_id": r.StartID, "workspace": r.Workspace,
		"principal": r.Principal,
	}}
	return ev
}

// commandLine is the command as one string, for people and SIEMs.
func commandLine(r *Record) string {
	if r.Command.Line != "" {
		return r.Command.Line
	}
	line := ""
	for i, a := range r.Command.Argv {
		if i > 0 {
			line += " "
		}
		line += strconv.Quote(a)[1 : len(strconv.Quote(a))-1]
	}
	return line
}

func programName(r *Record) string {
	if len(r.Command.Argv) > 0 {
		return r.Command.Argv[0]
	}
	return r.Command.Name
}

// CommandLine is the record's command as one display string.
func CommandLine(r *Record) string { return commandLine(r) }

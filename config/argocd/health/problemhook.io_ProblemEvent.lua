-- Health of a problemhook.io ProblemEvent, read from status.phase: Healthy
-- once every action has settled without failing, Degraded when one failed.
-- Argo CD runs custom checks without Lua's string and math libraries, so
-- this script uses neither.
local hs = {status = "Progressing", message = "Waiting for the controller"}
if obj.status == nil or obj.status.phase == nil then
  return hs
end
local phase = obj.status.phase
-- The Ready condition's message counts the actions by state.
local message = phase
if obj.status.conditions ~= nil then
  for _, c in ipairs(obj.status.conditions) do
    if c.type == "Ready" and c.message ~= nil and c.message ~= "" then
      message = c.message
      break
    end
  end
end
hs.message = message
if phase == "Succeeded" or phase == "Skipped" then
  hs.status = "Healthy"
elseif phase == "Failed" then
  hs.status = "Degraded"
end
return hs

-- Health of a problemhook.io IntegrationRoute, read from its Ready
-- condition. Argo CD runs custom checks without Lua's string and math
-- libraries, so this script uses neither.
local hs = {status = "Progressing", message = "Waiting for the controller"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local ready = nil
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    ready = c
    break
  end
end
if ready == nil then
  return hs
end
-- A condition written for an older spec says nothing about this one.
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil then
  local observed = obj.status.observedGeneration or ready.observedGeneration
  if observed == nil or observed < generation or (ready.observedGeneration ~= nil and ready.observedGeneration < generation) then
    return hs
  end
end
local message = ready.message or ""
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
elseif ready.status == "False" then
  hs.status = "Degraded"
  hs.message = ready.reason or "NotReady"
  if message ~= "" then
    hs.message = hs.message .. ": " .. message
  end
else
  hs.message = message
end
return hs

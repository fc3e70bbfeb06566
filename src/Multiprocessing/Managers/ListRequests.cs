namespace Multiprocessing;

/// <summary>The requests a list and an array in the manager share (get, set and read all), so both proxies send them one way.</summary>
internal static class ListRequests
{
    public static T Get<T>(ManagerClient client, long id, int index)
    {
        using var call = client.Begin(id, ManagerOp.ListGet);
        call.Write(index);
        var reply = call.Send();
        return ManagerCall.ReadValue<T>(ref reply);
    }

    public static void Set<T>(ManagerClient client, long id, int index, T value)
    {
        using var call = client.Begin(id, ManagerOp.ListSet);
        call.Write(index);
        call.WriteValue(value);
        call.Send();
    }

    public static T[] All<T>(ManagerClient client, long id)
    {
        using var call = client.Begin(id, ManagerOp.ListItems);
        var reply = call.Send();
        var result = new T[reply.ReadArrayHeader()];
        for (var i = 0; i < result.Length; i++) result[i] = ManagerCall.ReadValue<T>(ref reply);
        return result;
    }
}
